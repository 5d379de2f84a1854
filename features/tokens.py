"""Group 'tokens': which words the two titles share and which they do not, weighted by rarity.

A cosine of 0.9 can hide one differing word that decides the match: a colour, a flavour, a
variant ("merah" / "biru", "original" / "pedas"). Each word carries its inverse document
frequency in the catalog's titles, so a rare word one title has and the other lacks weighs more
than a common one. All features are symmetric (each unordered pair is computed once):

- ``tokens_idf_jaccard``: rarity-weighted Jaccard, Σ idf(shared) / Σ idf(either title);
- ``tokens_shared_rarity``: the rarest shared word (a shared brand or model name);
- ``tokens_only_rarity``: the rarest word in one title only;
- ``tokens_only_rarity_both``: the smaller of the two sides' rarest unshared words (0 when a
  title has no word the other lacks): both sides name something the other does not, as two
  variants do, where a longer title that only adds words scores 0;
- ``tokens_only_count``: words in one title only.

A word's rarity is its idf scaled to [0, 1], ln((1 + n) / (1 + df)) / ln((1 + n) / 2): 1 for a
word of one title, 0 for a word of every title. The model is trained on one catalog and applied
to others of any size, where the raw idf of a word seen once moves with ln n (7.2 at a thousand
titles, 11.2 at seventy thousand); the Jaccard, a ratio, does not need the scaling.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from .context import PairContext
from .titles import title_words

FEATURES = ("tokens_idf_jaccard", "tokens_shared_rarity", "tokens_only_rarity",
            "tokens_only_rarity_both", "tokens_only_count")


def token_features(ctx: PairContext) -> dict[str, np.ndarray]:
    matrix = title_words(ctx)
    if matrix is None:  # no word in any title
        return {name: np.full(len(ctx), np.nan, np.float32) for name in FEATURES}
    indptr, indices, idf, rarity = ctx.shared("title_word_idf", lambda: _word_idf(matrix))
    columns = ctx.symmetric_many(lambda a, b: _pair_tokens(
        indptr, indices, idf, rarity, a.astype(np.int64), b.astype(np.int64)))
    out = dict(zip(FEATURES, columns))
    counts = np.diff(indptr)
    no_words = (counts[ctx.i] == 0) | (counts[ctx.j] == 0)
    for values in out.values():  # a title without words says nothing about which words differ
        values[no_words] = np.nan
    return out


def _word_idf(matrix: sp.csr_matrix) -> tuple[np.ndarray, ...]:
    """CSR structure of the binary posting × word matrix (sorted word ids per row), each word's
    smoothed inverse document frequency, ln((1 + n) / (1 + df)) + 1 (as TF-IDF's), and its
    rarity, (idf - 1) / ln((1 + n) / 2) (1 for every word of a one-posting catalog)."""
    matrix = sp.csr_matrix(matrix)
    matrix.sort_indices()
    n = matrix.shape[0]
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    scale = np.log((1.0 + n) / 2.0)
    rarity = ((idf - 1.0) / scale if scale > 0 else np.ones_like(idf)).astype(np.float32)
    return matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64), idf, rarity


@numba.njit(parallel=True, cache=True)
def _pair_tokens(indptr, indices, idf, rarity, a, b):  # pragma: no cover (compiled)
    """Merge the sorted word ids of rows a[p] and b[p]: the five features of FEATURES (sums of
    idf, maxima of rarity; 0 where there is no such word)."""
    m = len(a)
    jaccard = np.empty(m, np.float32)
    shared_max = np.empty(m, np.float32)
    only_max = np.empty(m, np.float32)
    only_both = np.empty(m, np.float32)
    only_count = np.empty(m, np.float32)
    for p in numba.prange(m):
        x, x_end = indptr[a[p]], indptr[a[p] + 1]
        y, y_end = indptr[b[p]], indptr[b[p] + 1]
        shared = union = 0.0
        top_shared = top_x = top_y = 0.0
        count = 0
        while x < x_end or y < y_end:
            if y >= y_end or (x < x_end and indices[x] < indices[y]):
                union += idf[indices[x]]
                top_x = max(top_x, rarity[indices[x]])
                count += 1
                x += 1
            elif x >= x_end or indices[y] < indices[x]:
                union += idf[indices[y]]
                top_y = max(top_y, rarity[indices[y]])
                count += 1
                y += 1
            else:
                w = idf[indices[x]]
                shared += w
                union += w
                top_shared = max(top_shared, rarity[indices[x]])
                x += 1
                y += 1
        jaccard[p] = shared / union if union > 0 else 0.0
        shared_max[p] = top_shared
        only_max[p] = max(top_x, top_y)
        only_both[p] = min(top_x, top_y)
        only_count[p] = count
    return jaccard, shared_max, only_max, only_both, only_count
