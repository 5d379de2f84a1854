"""Model codes as a 'blocks' embedding: a posting × code 0/1 matrix whose shared columns pair
postings (:func:`common.codes.code_keys`: the same code, or one code beginning the other).

A candidate source beside the top-K lists: two listings of one television written `QE55Q8DNA`
and `qe-55q8dn` share few words and may sit far down each other's lists in a catalog of many
televisions, but they share a code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from common.codes import code_keys, extract_codes
from common.text import clean_titles

from .base import Embedder, Embedding


class CodesEmbedder(Embedder):
    """Row r has a 1 in the column of each of its code keys; rows without a code are missing."""

    name = "codes"
    kind = "blocks"

    def __init__(self):
        pass

    def embed(self, postings: pl.DataFrame, images_dir: Path | None = None) -> Embedding:
        n = postings.height
        keys = code_keys(extract_codes(clean_titles(postings["title"])))
        vocabulary = keys.select(pl.col("code").unique().sort()).with_row_index("column")
        keys = keys.join(vocabulary, on="code")
        rows = keys["row"].to_numpy()
        matrix = sp.csr_matrix((np.ones(len(rows), np.float32),
                                (rows, keys["column"].to_numpy())),
                               shape=(n, vocabulary.height))
        return Embedding(self.name, self.kind, matrix, np.diff(matrix.indptr) == 0)
