"""Vectors computed elsewhere, such as the out-of-fold ArcFace embeddings of protocol P2
(``python cli.py train-embedder --oof``), served to the candidate and feature stages like any
other dense embedder. The folder's manifest must name the same postings, in the same order."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from common.errors import InputError
from common.postings import fingerprint

from .base import Embedder, Embedding, l2_normalise_rows
from .weights import file_digest


class PrecomputedEmbedder(Embedder):
    name = "precomputed"
    kind = "dense"

    def __init__(self, path: str | None = None, modality: str = "text"):
        if modality not in ("text", "image"):
            raise ValueError("modality must be 'text' or 'image'")
        self.path = path
        self.modality = modality

    def _folder(self) -> Path:
        if not self.path:
            raise InputError("the precomputed embedder needs a folder: precomputed:path=DIR")
        folder = Path(self.path)
        if not (folder / "manifest.json").is_file():
            raise InputError("no manifest.json: not a folder written by train-embedder --oof",
                             file=str(folder))
        return folder

    def model_fingerprint(self) -> str:
        return file_digest(self._folder() / "vectors.npy")

    def embed(self, postings: pl.DataFrame, images_dir: Path | None = None) -> Embedding:
        import json

        folder = self._folder()
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("postings_fingerprint") != fingerprint(postings):
            raise InputError("these vectors were computed for other postings (or another row "
                             "order)", file=str(folder / "manifest.json"))
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        missing = np.load(folder / "missing.npy", allow_pickle=False)
        return Embedding(self.name, self.kind, l2_normalise_rows(vectors), missing)
