"""Group 'fuzzy': edit-distance and token-overlap similarity of the two titles.

All scores are symmetric, so each unordered pair is scored once (rapidfuzz's ``cpdist`` over
aligned title arrays, on every core) and copied to its reverse pair.
"""
from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process
from sklearn.feature_extraction.text import CountVectorizer

from candidates import pair_similarity
from common.text import clean_titles

from .context import PairContext

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


def cleaned_titles(ctx: PairContext) -> np.ndarray:
    """The catalog's cleaned titles, shared by the chunks of the table."""
    return ctx.shared("titles", lambda: np.array(clean_titles(ctx.postings["title"]),
                                                 dtype=object))


def title_words(ctx: PairContext):
    """Binary posting × word matrix of the cleaned titles (None where no title has a word),
    shared by the chunks and by the groups that read words ('fuzzy', 'tokens')."""
    return ctx.shared("title_words", lambda: _word_matrix(cleaned_titles(ctx)))


def _word_matrix(titles: np.ndarray):
    """Binary posting × word matrix of the titles; None where no title has a word."""
    words = CountVectorizer(binary=True, token_pattern=r"(?u)\b\w+\b", dtype=np.float32)
    try:
        return words.fit_transform(titles)
    except ValueError:
        return None
