"""Embedding cache: one folder per embedder under the work directory, keyed by inputs + config.

A cached matrix is reused only when its manifest's key equals the key of the request (embedder
name and config, model fingerprint, hash of the postings' order and input columns); anything
else is recomputed and overwritten, so a stale cache is never silently used.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl
import scipy.sparse as sp

from common.atomic import atomic_path, read_json, save_npy, write_json
from common.errors import InputError
from common.postings import fingerprint

from .base import SPARSE_KINDS, Embedder, Embedding

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def embed_catalog(embedder: Embedder, postings: pl.DataFrame, cache_dir: Path | None,
                  images_dir: Path | None = None, compute: Callable | None = None) -> Embedding:
    """Vectors of ``postings`` from the cache when valid, else computed and cached; by
    ``compute(embedder, postings, images_dir)`` where given (the same vectors, made elsewhere:
    Dask tasks), else by ``embedder.embed``."""
    columns = tuple(c for c in embedder.input_columns if c in postings.columns)
    key = embedder.cache_key(fingerprint(postings, columns),
                             extra=str(images_dir) if images_dir else "")
    folder = Path(cache_dir) / embedder.cache_name if cache_dir is not None else None
    if folder is not None:
        cached = _load(folder, key)
        if cached is not None:
            return cached
    start = time.perf_counter()
    if embedder.trains:  # trains here (torch uses every core), keeping its models in the cache
        embedding = embedder.embed(postings, images_dir,
                                   workspace=folder / "training" if folder else None)
    elif compute is None:
        embedding = embedder.embed(postings, images_dir)
    else:
        embedding = compute(embedder, postings, images_dir)
    embedding.modality = embedder.modality
    embedding.manifest = {
        "embedder": embedder.name, "kind": embedding.kind, "modality": embedder.modality,
        "config": embedder.get_config(), "model_fingerprint": embedder.model_fingerprint(),
        "postings_fingerprint": fingerprint(postings, columns), "key": key,
        "rows": len(embedding),
        "dims": int(embedding.vectors.shape[1]) if embedding.vectors.ndim == 2 else 1,
        "missing": int(embedding.missing.sum()), "seconds": round(time.perf_counter() - start, 3),
        **embedding.manifest}  # what the embedder adds: a learned one's trained encoder
    if folder is not None:
        _store(folder, embedding)
    return embedding


def _store(folder: Path, embedding: Embedding) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # the manifest goes last: it marks completeness
    if embedding.kind in SPARSE_KINDS:
        with atomic_path(folder / "vectors.npz") as tmp:
            with open(tmp, "wb") as fh:
                sp.save_npz(fh, embedding.vectors, compressed=False)
    else:
        save_npy(folder / "vectors.npy", embedding.vectors)
    save_npy(folder / "missing.npy", embedding.missing)
    write_json(folder / MANIFEST, embedding.manifest)


def _load(folder: Path, key: str) -> Embedding | None:
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        return None
    try:
        manifest = read_json(manifest_path, "candidates")
    except InputError:
        log.warning(f"{manifest_path}: damaged cache manifest; recomputing these "
                    f"embeddings")
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != key \
            or "modality" not in manifest:
        return None
    try:
        if manifest["kind"] in SPARSE_KINDS:
            vectors = sp.load_npz(folder / "vectors.npz").tocsr()
        else:
            vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        missing = np.load(folder / "missing.npy", allow_pickle=False)
    except Exception as exc:  # truncated or garbage: numpy/scipy raise several error types
        log.warning(f"{folder}: damaged cache entry ({type(exc).__name__}); "
                    f"recomputing these embeddings")
        return None
    if vectors.shape[0] != manifest["rows"] or len(missing) != manifest["rows"]:
        log.warning(f"{folder}: cache entry of the wrong size; recomputing it")
        return None
    if manifest.get("encoder") and not Path(manifest["encoder"]).is_dir():
        log.warning(f"{folder}: the trained encoder {manifest['encoder']} is gone; training "
                    f"again (fold models still there are reused)")
        return None
    return Embedding(manifest["embedder"], manifest["kind"], vectors, missing, manifest,
                     manifest["modality"])
