"""Gallery cards: which postings to show, their predicted groups, missed true matches, each pair's
top feature contributions and the image thumbnails.

Only the shown pairs (a few hundred rows) are read back from features.parquet and explained with
the model's per-feature contributions (LightGBM ``pred_contrib``; the second-stage model's when
there is one). Only vectorised steps touch all pairs: the selection of the worst mistakes and,
with a second stage, its score-graph features.
"""
from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from common.console import track
from common.errors import InputError

from .run import Matches, Run

log = logging.getLogger(__name__)

MEMBERS_SHOWN = 12   # predicted members shown per card (the rest are counted)
MISSED_SHOWN = 6     # missed true matches shown per card
TOP_CONTRIBUTIONS = 3
THUMBNAIL_PIXELS = 96


@dataclass
class Pair:
    posting: int                 # the other end of the pair
    row: int | None              # row in the out-of-fold pairs; None: not a candidate pair
    score: float | None = None   # post-processed (symmetrised) score
    p: float | None = None       # the model's own score for this direction
    same: bool = False
    contributions: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass
class Card:
    query: int
    reason: str                  # "false positive", "false negative" or "sample"
    trigger: int | None          # the posting whose pair put this card in the gallery
    members: list[Pair]          # predicted matches, best score first
    members_hidden: int
    missed: list[Pair]           # true matches that were not predicted
    missed_hidden: int


def select_cards(run: Run, matches: Matches, count: int, seed: int) -> list[Card]:
    """``count`` cards: a third the worst false positives (highest-scored kept false pairs), a
    third the worst false negatives (lowest-scored true candidate pairs that were not kept), the
    rest a seeded sample of postings; no posting appears twice."""
    worst = max(count // 3, 0)
    fp = np.flatnonzero(matches.keep & ~matches.same)
    fp = fp[np.lexsort((fp, -matches.score[fp]))]
    fn = np.flatnonzero(~matches.keep & matches.same)
    fn = fn[np.lexsort((fn, matches.score[fn]))]
    chosen: dict[int, tuple[str, int | None]] = {}
    for reason, rows in (("false positive", fp), ("false negative", fn)):
        picked = 0
        for row in rows:
            if picked == worst:
                break
            q, other = int(run.i[row]), int(run.j[row])
            if q in chosen or other in chosen:  # the same mistake seen from the other end
                continue
            chosen[q] = (reason, other)
            picked += 1
    rng = np.random.default_rng(seed)
    for q in rng.permutation(run.n):
        if len(chosen) >= min(count, run.n):
            break
        chosen.setdefault(int(q), ("sample", None))
    index = _PairIndex(run)
    return [_card(q, reason, trigger, run, matches, index)
            for q, (reason, trigger) in chosen.items()]


class _PairIndex:
    """Rows of each query's pairs and postings of each label, by binary search."""

    def __init__(self, run: Run):
        self.order = np.argsort(run.i, kind="stable") if np.any(np.diff(run.i) < 0) else None
        self.sorted_i = run.i if self.order is None else run.i[self.order]
        self.by_label = np.argsort(run.labels, kind="stable")
        self.sorted_labels = run.labels[self.by_label]

    def rows_of(self, q: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.sorted_i, [q, q + 1])
        return np.arange(lo, hi) if self.order is None else self.order[lo:hi]

    def group_of(self, label: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.sorted_labels, [label, label + 1])
        return self.by_label[lo:hi]


def _card(q: int, reason: str, trigger: int | None, run: Run, matches: Matches,
          index: _PairIndex) -> Card:
    rows = index.rows_of(q)
    kept = rows[matches.keep[rows]]
    kept = kept[np.lexsort((run.j[kept], -matches.score[kept]))]
    members = [_pair(int(r), run, matches) for r in kept]
    if trigger is not None and reason == "false positive":  # the mistake itself first
        members.sort(key=lambda pair: pair.posting != trigger)
    row_of = {int(run.j[r]): int(r) for r in rows}
    predicted = set(run.j[kept].tolist())
    missed = [_pair(row_of[m], run, matches) if m in row_of else Pair(m, None, same=True)
              for m in index.group_of(int(run.labels[q])).tolist()
              if m != q and m not in predicted]
    # best-scored misses first; pairs that were never candidates last
    missed.sort(key=lambda pair: (pair.row is None, -(pair.score or 0.0), pair.posting))
    if trigger is not None and reason == "false negative":
        missed.sort(key=lambda pair: pair.posting != trigger)
    return Card(q, reason, trigger, members[:MEMBERS_SHOWN], max(len(members) - MEMBERS_SHOWN, 0),
                missed[:MISSED_SHOWN], max(len(missed) - MISSED_SHOWN, 0))


def _pair(row: int, run: Run, matches: Matches) -> Pair:
    return Pair(int(run.j[row]), row, float(matches.score[row]), float(run.p[row]),
                bool(matches.same[row]))


def explain(cards: list[Card], run: Run, top: int = TOP_CONTRIBUTIONS) -> None:
    """Fill each shown pair's largest per-feature contributions (by magnitude)."""
    pairs = [pair for card in cards for pair in card.members + card.missed if pair.row is not None]
    found = contributions(run, np.array(sorted({pair.row for pair in pairs}), np.int64), top)
    for pair in pairs:
        pair.contributions = found[pair.row]


def contributions(run: Run, rows: np.ndarray, top: int = TOP_CONTRIBUTIONS
                  ) -> dict[int, list[tuple[str, float, float]]]:
    """The ``top`` largest per-feature contributions (feature, contribution, value) of the
    out-of-fold pairs ``rows`` (sorted) from the saved model, reading only those pairs' rows of
    features.parquet: the explanation costs the model over the explained pairs alone."""
    if not len(rows):
        return {}
    first = run.bundle.ranker
    if run.p_first_stage is None:
        ranker = first
        X = read_feature_rows(run.work.features, rows, first.feature_names_)
    else:  # the second stage scored the pairs: its inputs are the features + the score graph
        from features import score_graph_features

        ranker = run.bundle.second
        graph = score_graph_features(run.i, run.j, run.p_first_stage, run.n)[rows]
        X = np.hstack([read_feature_rows(run.work.features, rows, first.feature_names_), graph])
    names = ranker.feature_names_
    values = ranker.contributions(X)[:, : len(names)]  # last column: the bias
    found = {}
    for k, row in enumerate(rows.tolist()):
        largest = np.argsort(-np.abs(values[k]), kind="stable")[:top]
        found[row] = [(names[f], float(values[k, f]), float(X[k, f])) for f in largest]
    return found


def read_feature_rows(path: Path, rows: np.ndarray, names: list[str]) -> np.ndarray:
    """``rows`` (sorted) of the named columns of a parquet file, reading only the row groups
    that hold them; float32, columns in the order of ``names``."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    available = set(parquet.schema_arrow.names)
    absent = [name for name in names if name not in available]
    if absent:
        raise InputError(f"the model's features {absent[:5]} are not in the feature table; "
                         f"rerun train-ranker", file=str(path))
    sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    if len(rows) and rows[-1] >= starts[-1]:
        raise InputError(f"row {rows[-1]} is beyond the table's {starts[-1]:,} rows",
                         file=str(path))
    groups = np.unique(np.searchsorted(starts, rows, side="right") - 1)
    parts = []
    for g in track(groups.tolist(), "reading gallery feature rows"):
        inside = rows[(rows >= starts[g]) & (rows < starts[g + 1])] - starts[g]
        table = parquet.read_row_group(g, columns=names).take(inside)
        parts.append(np.column_stack([table.column(name).to_numpy(zero_copy_only=False)
                                      for name in names]).astype(np.float32))
    return np.vstack(parts) if parts else np.empty((0, len(names)), np.float32)


def thumbnails(postings: pl.DataFrame, shown: list[int], images: Path | None,
               pixels: int = THUMBNAIL_PIXELS, max_bytes: int | None = None) -> dict[int, str]:
    """Small JPEG thumbnails as data URIs for the ``shown`` rows of ``postings``, in that order
    until the data URIs reach ``max_bytes`` (no bound by default); missing or unreadable images
    are left out and counted in one warning."""
    if images is None or "image" not in postings.columns:
        return {}
    from PIL import Image

    names = postings["image"].to_list()
    wanted = list(dict.fromkeys(shown))
    found: dict[int, str] = {}
    failed = size = 0
    for k in wanted:
        name = names[k]
        if not name:
            failed += 1
            continue
        try:
            with Image.open(images / name) as image:
                image = image.convert("RGB")
                image.thumbnail((pixels, pixels))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=70)
        except (OSError, ValueError, Image.DecompressionBombError):
            failed += 1
            continue
        uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
        if max_bytes is not None and size + len(uri) > max_bytes:
            log.info(f"thumbnails stop at {len(found):,} postings: their {size / 1e6:.1f} MB "
                     f"reach the {max_bytes / 1e6:.0f} MB bound")
            break
        size += len(uri)
        found[k] = uri
    if failed:
        log.warning(f"{failed:,} of {len(wanted):,} images are missing or "
                    f"unreadable under {images}; those postings are shown by title only")
    return found
