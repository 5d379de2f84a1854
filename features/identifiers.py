"""Group 'identifiers': model codes in titles (:mod:`common.codes`), compared per pair.

Two televisions with the same words and sizes differ by `QE55Q8DNA` against `QE55Q7FNA`; one
product loses a variant letter (`QE55Q8DN`). Comparison is sparse dot products and vectorised
string operations over the pairs, never a loop.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from candidates import pair_similarity
from common.codes import PREFIX_MIN, extract_codes
from common.tokens import token_matrix

from .context import PairContext
from .titles import cleaned_titles


def identifier_features(ctx: PairContext) -> dict[str, np.ndarray]:
    i, j = ctx.i, ctx.j
    matrix, counts, primary = ctx.shared("identifier_codes",
                                         lambda: _codes(cleaned_titles(ctx).tolist(), ctx.n))
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


def _codes(titles: list[str], n: int) -> tuple[sp.csr_matrix, np.ndarray, pl.Series]:
    """The posting × code matrix, each posting's count of codes and its primary code (the
    longest; ties: the first in sorted order; null without one)."""
    codes = extract_codes(titles)
    matrix = token_matrix(codes["row"].to_numpy(), codes["code"], n)
    longest = (codes.sort(pl.col("code").str.len_chars(), "code", descending=[True, False])
               .unique("row", keep="first"))
    primary = (pl.DataFrame({"row": np.arange(n, dtype=np.int64)})
               .join(longest, on="row", how="left", maintain_order="left")["code"])
    return matrix, np.diff(matrix.indptr).astype(np.float32), primary
