"""Group 'identifiers': model codes in titles, normalised, compared per pair.

Electronics, appliances and parts are named by a model code more than by their words: two
televisions with the same words and sizes differ by `QE55Q8DNA` against `QE55Q7FNA`, and one
product is written `CNSL3033`, `cnsl 3033` or `CNSL-3033`, or loses a variant letter
(`QE55Q8DN`). A code here is a token of at least :data:`CODE_MIN` letters and digits mixed
(separators inside it folded: `sm-g950f` is `smg950f`), or a short letter word followed by a
number of three digits or more (`cnsl 3033`); a number followed by a short unit (`500ml`,
`1080p`) is a quantity, not a code. Extraction is regex work over all titles at once (polars);
comparison is sparse dot products and vectorised string operations over the pairs, never a loop.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from candidates import pair_similarity
from common.text import clean_titles

from .context import PairContext
from .units import token_matrix

CODE_MIN = 4    # shortest code, in characters
PREFIX_MIN = 6  # a code at least this long matches a longer code that begins with it
_QUANTITY = r"^\d+(?:[.,]\d+)?[a-z]{1,4}$"  # 500ml, 2.5kg, 1080p, 64gb: a number and its unit


def extract_codes(titles: list[str]) -> pl.DataFrame:
    """``row``, ``code``: each title's distinct codes (lower case, separators removed)."""
    frame = pl.DataFrame({"title": titles}, schema={"title": pl.String}).with_row_index("row")
    # Separators between letters and digits inside a code go (twice: "a-b-c" overlaps).
    folded = pl.col("title")
    for _ in range(2):
        folded = folded.str.replace_all(r"([a-z0-9])[-/.]([a-z0-9])", "${1}${2}")
    joined = folded.str.replace_all(r"\b([a-z]{2,5}) (\d{3,})\b", "${1}${2}")
    tokens = (frame.select(pl.col("row").cast(pl.Int64),
                           joined.str.extract_all(r"[a-z0-9]+").alias("code"))
              .explode("code").drop_nulls("code"))
    return (tokens.filter(pl.col("code").str.len_chars() >= CODE_MIN,
                          pl.col("code").str.contains(r"[a-z]"),
                          pl.col("code").str.contains(r"\d"),
                          ~pl.col("code").str.contains(_QUANTITY))
            .unique().sort("row", "code"))


def identifier_features(ctx: PairContext) -> dict[str, np.ndarray]:
    i, j = ctx.i, ctx.j
    matrix, counts, primary = ctx.shared("identifier_codes", lambda: _codes(ctx.postings, ctx.n))
    common = ctx.symmetric(lambda a, b: pair_similarity(matrix, a, b))
    has_i, has_j = counts[i] > 0, counts[j] > 0
    both = has_i & has_j
    code_i, code_j = primary.gather(i), primary.gather(j)
    shorter = np.minimum(code_i.str.len_chars().fill_null(0).to_numpy(),
                         code_j.str.len_chars().fill_null(0).to_numpy())
    prefix = (both & (shorter >= PREFIX_MIN)
              & (code_i.str.starts_with(code_j) | code_j.str.starts_with(code_i))
              .fill_null(False).to_numpy())
    distance = np.full(len(i), np.nan, np.float32)
    if both.any():
        distance[both] = process.cpdist(code_i.filter(both).to_list(),
                                        code_j.filter(both).to_list(),
                                        scorer=Levenshtein.normalized_distance,
                                        dtype=np.float32, workers=-1)
    # id_prefix: the primary codes are equal or one begins the other (QE55Q8DN, QE55Q8DNA);
    # id_conflict: both state codes, none shared and neither primary begins the other.
    return {"id_shared": common,
            "id_prefix": np.where(both, prefix, np.nan).astype(np.float32),
            "id_conflict": np.where(both, (common == 0) & ~prefix, np.nan).astype(np.float32),
            "id_one_side": (has_i != has_j).astype(np.float32),
            "id_count_i": counts[i], "id_count_j": counts[j],
            "id_distance": distance}


def _codes(postings: pl.DataFrame, n: int) -> tuple[sp.csr_matrix, np.ndarray, pl.Series]:
    """The posting × code matrix, each posting's count of codes and its primary code (the
    longest; ties: the first in sorted order; null without one)."""
    codes = extract_codes(clean_titles(postings["title"]))
    matrix = token_matrix(codes["row"].to_numpy(), codes["code"], n)
    longest = (codes.sort(pl.col("code").str.len_chars(), "code", descending=[True, False])
               .unique("row", keep="first"))
    primary = (pl.DataFrame({"row": np.arange(n, dtype=np.int64)})
               .join(longest, on="row", how="left", maintain_order="left")["code"])
    return matrix, np.diff(matrix.indptr).astype(np.float32), primary
