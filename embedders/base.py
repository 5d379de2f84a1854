"""What every embedder is and returns."""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from common.text import CLEANUP_VERSION

# Kinds of vectors and how candidate search treats them:
#   dense  - float32 n × d, L2-normalised rows; exact inner-product top-K (candidates.top_k)
#   sparse - CSR float32 n × d, L2-normalised rows; exact top-K by chunked sparse products
#   hash   - uint64 per row (a 64-bit perceptual hash); exact-equality blocks, Hamming distances
#   blocks - CSR float32 n × keys, 0/1: rows sharing a key are paired (model codes)
KINDS = ("dense", "sparse", "hash", "blocks")
SPARSE_KINDS = ("sparse", "blocks")  # stored as CSR matrices


@dataclass
class Embedding:
    """One embedder's vectors for a catalog. ``missing[r]`` marks rows without a vector (an empty
    title, an absent or unreadable image); their vectors are zero and they get no neighbours."""

    name: str
    kind: str
    vectors: Any
    missing: np.ndarray
    manifest: dict = field(default_factory=dict)
    modality: str = "text"  # "text" or "image": which view of the posting the vectors describe

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @classmethod
    def stack(cls, parts: list[Embedding]) -> Embedding:
        """One embedding of consecutive chunks of postings, each embedded apart."""
        first = parts[0]
        vectors = sp.vstack([p.vectors for p in parts], format="csr") if first.kind == "sparse" \
            else np.concatenate([p.vectors for p in parts])
        return cls(first.name, first.kind, vectors, np.concatenate([p.missing for p in parts]),
                   modality=first.modality)


class Embedder:
    """Base class. Parameters live in ``__init__`` (plain data, as in scikit-learn); ``embed`` does
    the work. ``input_columns`` names the postings columns the vectors depend on, for the cache."""

    name: ClassVar[str]
    kind: ClassVar[str]
    modality: ClassVar[str] = "text"
    input_columns: ClassVar[tuple[str, ...]] = ("posting_id", "title")
    # Row r's vector depends on row r alone, so chunks of postings can be embedded apart (as
    # Dask tasks) with the same vectors.
    per_posting: ClassVar[bool] = False
    # A learned family (embedders.learned): its trained encoder travels with a fitted model.
    learned: ClassVar[bool] = False
    # embed() trains models first and takes a ``workspace`` folder to keep them in.
    trains: ClassVar[bool] = False

    def get_config(self) -> dict[str, Any]:
        """The ``__init__`` parameters and their values (as scikit-learn's ``get_params``)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: list(v) if isinstance(v := getattr(self, p), tuple) else v for p in names}

    @property
    def cache_name(self) -> str:
        """The embedder's folder in an embeddings cache."""
        return self.name

    def model_fingerprint(self) -> str:
        """Identifies the weights or library behind the vectors; changes invalidate caches."""
        return ""

    def embed(self, postings: pl.DataFrame, images_dir: Path | None = None) -> Embedding:
        raise NotImplementedError

    def cache_key(self, postings_fingerprint: str, extra: str = "") -> str:
        payload = json.dumps([self.name, self.get_config(), self.model_fingerprint(),
                              postings_fingerprint, extra, CLEANUP_VERSION], sort_keys=True,
                             default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


def l2_normalise_rows(vectors):
    """Unit-length rows; all-zero rows stay zero. Works for dense arrays and CSR matrices."""
    if sp.issparse(vectors):
        vectors = sp.csr_matrix(vectors, dtype=np.float32)
        norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ vectors, dtype=np.float32)
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
