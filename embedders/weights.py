"""Fingerprints of model weights, so that a changed model never reuses a stale embedding cache."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

# Files inside a model folder whose bytes decide the vectors: weights, configs, tokenizer.
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".json", ".txt", ".model")

# What to do about a damaged checkpoint that the user named: train-embedder's, or their own.
GIVEN_CHECKPOINT = ("rerun `python cli.py train-embedder` if it wrote this file, or check the "
                    "file you gave")


def file_digest(path: str | Path) -> str:
    """SHA-256 of one file, read in 1 MiB blocks."""
    return _digest(str(Path(path).resolve()), Path(path).stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: str, mtime_ns: int) -> str:  # mtime in the key: a rewritten file is re-hashed
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(folder: str | Path) -> str:
    """SHA-256 over the names and digests of a model folder's weight, config and tokenizer files."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()
                       and p.suffix in _MODEL_FILE_SUFFIXES and "README" not in p.name):
        digest.update(f"{path.relative_to(folder)}={file_digest(path)}\n".encode())
    return digest.hexdigest()
