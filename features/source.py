"""Group 'source': where the postings say which source each came from (a ``source`` column: a
shop, a feed, one side of a record linkage), whether a pair crosses sources, and where each end
ranks the other among its candidates from that source.

Linking two shops' offers, the question is which offer of the *other* shop is this one: a
near-copy from the same shop outranks the true match in the plain rank (``rank_tfidf`` 2) but
not among the other shop's candidates (``source_rank_tfidf`` 1). A catalog whose postings carry
no source gets NaN in every column, so the schema depends on the groups and embedders only,
as the photo columns do on a title-only catalog.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from .context import PairContext

SOURCE_COLUMN = "source"


def source_features(ctx: PairContext) -> dict[str, np.ndarray]:
    codes = ctx.shared("source_codes", lambda: source_codes(ctx.postings))
    if codes is None:
        missing = np.full(len(ctx), np.nan, dtype=np.float32)
        out = {"same_source": missing}
        for name in ctx.vector_embedders:
            out[f"source_rank_{name}"] = missing
            out[f"source_rank_rev_{name}"] = missing
        return out
    code_i, code_j = codes[ctx.i], codes[ctx.j]
    known = (code_i >= 0) & (code_j >= 0)
    out = {"same_source": np.where(known, code_i == code_j, np.nan).astype(np.float32)}
    for name in ctx.vector_embedders:
        ranks = ctx.shared(("source_rank", name), lambda: _source_ranks(ctx, codes, name))
        out[f"source_rank_{name}"] = ranks[ctx.start:ctx.stop]
        out[f"source_rank_rev_{name}"] = ctx.reversed(ranks)
    return out


def source_codes(postings: pl.DataFrame) -> np.ndarray | None:
    """Integer code per posting of its source (−1 where blank or null); None where the postings
    have no source column or no posting names one."""
    if SOURCE_COLUMN not in postings.columns:
        return None
    source = postings[SOURCE_COLUMN].cast(pl.String).str.strip_chars()
    source = pl.when(source == "").then(None).otherwise(source)
    named = pl.select(source.alias("s"))["s"]
    if named.null_count() == len(named):
        return None
    return named.rank("dense").fill_null(0).to_numpy().astype(np.int32) - 1


def _source_ranks(ctx: PairContext, codes: np.ndarray, name: str) -> np.ndarray:
    """Over the whole pair table: the rank of j among i's candidates from j's source by the
    embedder's cosine (1: the most alike; ties share the best rank), NaN without a cosine or
    where j's source is unknown."""
    source_j = codes[ctx.table_j]
    frame = pl.DataFrame({"i": ctx.table_i, "source_j": source_j,
                          "sim": ctx.candidates[f"sim_{name}"]})
    rank = frame.select(pl.col("sim").rank("min", descending=True)
                        .over("i", "source_j"))["sim"]
    out = rank.cast(pl.Float32).fill_null(np.nan).to_numpy().astype(np.float32)
    out[source_j < 0] = np.nan
    return out
