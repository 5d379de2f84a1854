"""Group 'fuzzy': edit-distance and token-overlap similarity of the two titles.

All scores are symmetric, so each unordered pair is scored once (rapidfuzz's ``cpdist`` over
aligned title arrays, on every core) and copied to its reverse pair.
"""
from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from candidates import pair_similarity

from .context import PairContext
from .titles import cleaned_titles, title_words

SCORERS = {"ratio": fuzz.ratio, "partial_ratio": fuzz.partial_ratio,
           "token_set_ratio": fuzz.token_set_ratio}


def fuzzy_features(ctx: PairContext) -> dict[str, np.ndarray]:
    titles = cleaned_titles(ctx)
    i, j = ctx.i, ctx.j
    out: dict[str, np.ndarray] = {}
    for name, scorer in SCORERS.items():
        out[f"fuzzy_{name}"] = ctx.symmetric(
            lambda a, b, scorer=scorer: process.cpdist(
                titles[a], titles[b], scorer=scorer, dtype=np.float32, workers=-1) / 100)
    matrix = title_words(ctx)
    if matrix is None:  # no word in any title
        out["fuzzy_token_jaccard"] = np.full(len(i), np.nan, np.float32)
    else:
        common = ctx.symmetric(lambda a, b: pair_similarity(matrix, a, b))
        sizes = ctx.shared("title_word_counts",
                           lambda: np.diff(matrix.indptr).astype(np.float32))
        union = sizes[i] + sizes[j] - common
        out["fuzzy_token_jaccard"] = np.where(union > 0, common / np.maximum(union, 1), np.nan) \
            .astype(np.float32)
    lengths = ctx.shared("title_lengths", lambda: pl.Series(titles.tolist(), dtype=pl.String)
                         .str.len_chars().to_numpy().astype(np.float32))
    out["title_length_diff"] = np.abs(lengths[i] - lengths[j])
    out["title_length_ratio"] = (np.minimum(lengths[i], lengths[j])
                                 / np.maximum(np.maximum(lengths[i], lengths[j]), 1))
    return out
