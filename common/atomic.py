"""Atomic writes: every artifact is written to a temporary file beside its target, then renamed,
so an interrupted run never leaves a half-written file that a later stage would trust."""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import InputError

# Temporary files are hidden names ending ".tmp" beside their target; a killed process
# (SIGKILL, power loss) may leave some, which WorkDir.remove_stale_temporaries deletes.
TEMPORARY_GLOB = ".*.tmp"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        # A failed write names no file; the message names the artifact that was not written.
        raise OSError(exc.errno, f"{exc.strerror}; not written", str(target)) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(target: str | os.PathLike, obj: Any) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet(target: str | os.PathLike, frame) -> None:
    """Write a polars DataFrame. Statistics off and fixed compression keep the bytes reproducible."""
    # Serialised in memory, written by Python: polars' own file writer reports a full disk or
    # the `ulimit -f` limit as a ComputeError, Python's write as the OSError it is.
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=False)
    with atomic_path(target) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def save_npy(target: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def read_json(path: str | os.PathLike, produced_by: str | None = None) -> Any:
    """Parsed JSON; with ``produced_by`` (the command that writes it) a truncated or garbage
    file is an InputError naming the file and that command, not a traceback."""
    if produced_by is None:
        return json.loads(Path(path).read_text())
    return _guarded(lambda: json.loads(Path(path).read_text(encoding="utf-8")), path, produced_by)


def read_parquet(path: str | os.PathLike, produced_by: str, columns: tuple[str, ...] = ()):
    """A polars DataFrame of an artifact; damage (and ``columns`` it lacks) is an InputError."""
    import polars as pl

    frame = _guarded(lambda: pl.read_parquet(path), path, produced_by)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"lacks columns {missing}; rerun `python cli.py {produced_by}`",
                         file=str(path))
    return frame


def load_npy(path: str | os.PathLike, produced_by: str) -> np.ndarray:
    return _guarded(lambda: np.load(path, allow_pickle=False), path, produced_by)


def check_safetensors(path: str | os.PathLike, produced_by: str,
                      remedy: str | None = None) -> Path:
    """``path`` once its safetensors header parses and covers the whole file, so a truncated or
    garbage checkpoint is an InputError, not the loader's traceback (headers only: cheap).
    ``remedy`` replaces "rerun `python cli.py PRODUCED_BY`" where the user gave the file."""
    from safetensors import safe_open

    def read():
        with safe_open(str(path), framework="numpy"):
            pass

    _guarded(read, path, produced_by, remedy)
    return Path(path)


def load_torch_weights(path: str | os.PathLike, remedy: str):
    """What a weights-only torch file (``.pth``, ``.pt``) holds; a truncated or garbage file, or
    one that needs unpickling, is an InputError naming it and ``remedy``."""
    import torch

    def read():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except RuntimeError as exc:  # e.g. a cut zip archive; the first sentence says what
            raise ValueError(str(exc).split(". ")[0]) from None
        except Exception as exc:
            if type(exc).__name__ != "UnpicklingError":
                raise
            # Its message suggests loading with weights_only=False, which runs the file's code.
            raise ValueError("not a weights-only torch file") from None

    return _guarded(read, path, None, remedy)


def digest(*arrays: np.ndarray) -> str:
    """Cheap content hash of arrays (dtype, shape and bytes): ties artifacts to their inputs."""
    import hashlib

    h = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def require(path: str | os.PathLike, produced_by: str) -> Path:
    """``path`` when it exists; else an InputError naming the command that writes it."""
    if not Path(path).exists():
        raise InputError(f"missing; run `python cli.py {produced_by}` first", file=str(path))
    return Path(path)


def _guarded(read, path, produced_by: str | None, remedy: str | None = None):
    if produced_by is not None:
        require(path, produced_by)
    try:
        return read()
    except OSError as exc:
        if exc.errno is not None:  # permissions and the like: the CLI reports those as they are
            raise
        reason = str(exc)
    except Exception as exc:  # parquet, numpy and json readers raise their own error types
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    remedy = remedy or f"rerun `python cli.py {produced_by}`"
    raise InputError(f"truncated or damaged ({reason[:120]}); {remedy}", file=str(path))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
