"""Matching a catalog unlike the one the model was trained on, without labels from it.

A model's saved post-processing encodes its training catalog: the cut is where that catalog's F1
peaked, and Min2, chisel and merge assume its group sizes (Shopee: every product listed two to
fifty times; Min2 gives every posting at least one match). Carried to a catalog where half the
postings match nothing, that over-matches: the default Shopee model scores F1 0.64 on
Amazon-Google, where matching nothing scores 0.80 (``bench/transfer.py``).

**Detecting it.** Matching compares the catalog with the one the model records (both need no
labels): the Kolmogorov-Smirnov distance of its pair scores from the training out-of-fold ones
(:func:`ranker.score_shift`) above :data:`ranker.SCORE_SHIFT_WARN_ABOVE`, once there are
:data:`MIN_SHIFT_PAIRS` scored pairs (fewer leave the distance to chance), or an embedder whose
coverage differs by more than :data:`pipeline.coverage.WARN_ABOVE` (a title-only catalog for a
model trained with photos: :func:`pipeline.coverage.coverage_gaps`).

**Adapting.** Where it differs (``adapt="auto"``, the default; ``"always"`` forces it,
``"never"`` keeps the saved post-processing), the group-size steps switch off and the match sets
become the mutual best pairs (:class:`postprocess.MutualBest`) whose symmetrised score clears
:data:`CONSERVATIVE_CUT`: a posting matches at most the one candidate that is also the most
similar to it, and only when the model is confident. That assumes no group size learnt elsewhere;
it gives up the third and later members of a group for not matching strangers. Beside them it
keeps the scored pairs of *sole code holders*: two postings that are the only ones in the catalog
whose titles carry some model code (:mod:`common.codes`; `MB811LL/A` in two titles, no third).
That evidence is the catalog's own, not the model's: such pairs are the same product 97 % of the
time on Abt-Buy (electronics named by their codes) and 84 % on Shopee train. On Amazon-Google,
28 %: its groups link only across its two sources, so two copies of one product from the same
source, or a pair its mapping lacks (`01-ssc-5310 sonicwall global vpn client` from each
source), count as strangers.
"""
from __future__ import annotations

import logging

import numpy as np
import polars as pl

from common.codes import extract_codes
from common.pairs import find_pairs, pair_keys, symmetrise
from common.text import clean_titles
from postprocess import PostProcessor
from ranker import SCORE_SHIFT_WARN_ABOVE

log = logging.getLogger(__name__)

ADAPT_MODES = ("auto", "always", "never")
# A model carried elsewhere is over-confident: the default Shopee model's mutual best pairs on
# Amazon-Google are right about half the time above 0.8. At 0.9 they alone beat matching nothing
# there (0.8110 against 0.8035) and on Abt-Buy (0.7057 against 0.6618); with the sole code
# holders' pairs, 0.8075 and 0.8718 (bench/transfer.json). The cut was chosen on those catalogs.
CONSERVATIVE_CUT = 0.9
# Below a thousand scored pairs (a catalog of a few hundred postings) the distance says more
# about chance and the catalog's size than its kind: a generated catalog of 89 postings, drawn
# like the training one, gives 0.33 on 252 pairs; Shopee's three-posting test.csv 0.9 on two.
MIN_SHIFT_PAIRS = 1000


def differences(score_shift: float | None, scored_pairs: int, gaps: dict) -> list[str]:
    """How this catalog differs from the training one, one phrase each (empty: it does not)."""
    found = []
    if (score_shift is not None and scored_pairs >= MIN_SHIFT_PAIRS
            and score_shift > SCORE_SHIFT_WARN_ABOVE):
        found.append(f"its pair scores are far from those of the catalog the model was trained "
                     f"on (Kolmogorov-Smirnov distance {score_shift:.3f} > "
                     f"{SCORE_SHIFT_WARN_ABOVE})")
    for name, gap in gaps.items():
        found.append(f"{name} gives {gap['catalog']:.0%} of its postings a vector, against "
                     f"{gap['training']:.0%} of the training catalog's (a photo-less catalog, "
                     f"missing image files?)")
    return found


def conservative_processor(symmetrise: str = "mean") -> PostProcessor:
    """The mutual best pairs above :data:`CONSERVATIVE_CUT`, nothing tuned."""
    return PostProcessor.from_params({"symmetrise": symmetrise, "steps": [
        {"step": "threshold", "threshold": CONSERVATIVE_CUT}, {"step": "mutual_best"}]})


def choose_processor(saved: PostProcessor, found: list[str], adapt: str = "auto"
                     ) -> tuple[PostProcessor, bool]:
    """The post-processing to match with, and whether it is the conservative one; logs one
    warning naming what differs and what is done about it."""
    if adapt not in ADAPT_MODES:
        raise ValueError(f"adapt must be one of {', '.join(ADAPT_MODES)}, not {adapt!r}")
    conservative = adapt == "always" or (adapt == "auto" and bool(found))
    if found:
        action = ("matching the mutual best pairs above "
                  f"{CONSERVATIVE_CUT} and the sole holders of a model code instead of the saved "
                  f"post-processing (tuned there; "
                  f"adapt='never', --adapt never, keeps it)" if conservative else
                  "the saved post-processing was tuned there and may over- or under-match here")
        log.warning(f"this catalog differs from the one the model was trained on: "
                    f"{'; '.join(found)}; {action}. Check the matches on labelled pairs or "
                    f"train on this catalog")
    return (conservative_processor(saved.symmetrise) if conservative else saved), conservative


def sole_code_pairs(titles: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each pair of postings (rows ``a`` < ``b``, once) that are the only two whose titles carry
    some model code."""
    codes = extract_codes(clean_titles(titles))
    holders = (codes.group_by("code")
               .agg(pl.col("row").min().alias("a"), pl.col("row").max().alias("b"),
                    pl.len().alias("holders"))
               .filter(pl.col("holders") == 2)
               .select("a", "b").unique().sort("a", "b"))
    return holders["a"].to_numpy().astype(np.int64), holders["b"].to_numpy().astype(np.int64)


def with_sole_code_pairs(kept: tuple[np.ndarray, np.ndarray, np.ndarray], i: np.ndarray,
                         j: np.ndarray, p: np.ndarray, n: int, titles: pl.Series,
                         how: str = "mean") -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray],
                                                     int]:
    """The conservative match sets ``kept`` (``i``, ``j``, score) and the scored pairs (both
    directions, at their ``how``-symmetrised score) of sole code holders (module docstring),
    each pair once; and how many pairs of sole code holders were scored (and are now kept)."""
    a, b = sole_code_pairs(titles)
    position = find_pairs(i, j, np.concatenate([a, b]), np.concatenate([b, a]), n)
    rows = position[position >= 0]
    held = int(((position[:len(a)] >= 0) | (position[len(a):] >= 0)).sum())  # either direction
    score = symmetrise(i, j, p, n, how)[rows]
    all_i = np.concatenate([kept[0], i[rows]]).astype(np.int64)
    all_j = np.concatenate([kept[1], j[rows]]).astype(np.int64)
    all_score = np.concatenate([kept[2], score]).astype(kept[2].dtype)
    _, first = np.unique(pair_keys(all_i, all_j, n), return_index=True)
    first = np.sort(first)
    return (all_i[first], all_j[first], all_score[first]), held
