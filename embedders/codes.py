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

from common.codes import code_keys, extract_codes
from common.text import clean_titles
from common.tokens import token_matrix

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
        matrix = token_matrix(keys["row"].to_numpy(), keys["code"], n)
        return Embedding(self.name, self.kind, matrix, np.diff(matrix.indptr) == 0)
