"""Where each stage reads and writes inside a work directory.

Stages hand each other files, not objects: any stage can be rerun from what the previous one left.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

# Locks this process holds: resolved root → [open lock file, depth]. flock conflicts between two
# opens of the same file even in one process, so nested lock() calls (train-ranker fits, then
# saves into model/) reuse the outer one.
_HELD: dict[Path, list] = {}
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class WorkDir:
    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    @property
    def postings(self) -> Path:
        """The validated postings (row order = index order of every array)."""
        return self.root / "postings.parquet"

    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings"

    @property
    def neighbours(self) -> Path:
        return self.root / "neighbours"

    @property
    def candidates(self) -> Path:
        return self.root / "candidates.parquet"

    @property
    def candidates_report(self) -> Path:
        return self.root / "candidates.json"

    @property
    def features(self) -> Path:
        return self.root / "features.parquet"

    @property
    def features_report(self) -> Path:
        return self.root / "features.json"

    @property
    def oof_scores(self) -> Path:
        return self.root / "oof_scores.parquet"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

    @contextlib.contextmanager
    def lock(self, command: str | None = None) -> Iterator[WorkDir]:
        """Be the only writer of this work directory while the block runs.

        flock on ``.lock``: the kernel drops it when the holder dies, so a lock left by a killed
        run is never mistaken for a live one; the file keeps the holder's pid, host, command and
        start time for the refusal message. A second writer gets an InputError."""
        from .errors import InputError

        key = self.root.resolve()
        if key in _HELD:
            _HELD[key][1] += 1
            try:
                yield self
            finally:
                _HELD[key][1] -= 1
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.lock_file, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fh)
            fh.close()
            raise InputError(f"another run is writing this work directory ({holder}); wait for "
                             f"it to finish", file=str(self.root)) from None
        stale = _holder(fh)
        if stale != "unknown process":
            log.warning(f"taking over the stale lock of {stale}, which no longer runs "
                        f"({self.lock_file})")
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "command": command or " ".join(sys.argv[:2]),
                             "started": datetime.datetime.now().isoformat(timespec="seconds")}))
        fh.flush()
        _HELD[key] = [fh, 1]
        try:
            yield self
        finally:
            del _HELD[key]
            # Emptied, not deleted: deleting would let a waiting writer lock the old inode
            # while a third one creates a new file.
            fh.truncate(0)
            fh.close()

    def check_not_writing(self) -> None:
        """Refuse (InputError) to read a work directory that a live run is writing."""
        from .errors import InputError

        if self.root.resolve() in _HELD or not self.lock_file.is_file():
            return
        with open(self.lock_file, encoding="utf-8") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"another run is writing this work directory ({_holder(fh)}); "
                                 f"read it when that run has finished",
                                 file=str(self.root)) from None

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files a killed run left behind (see common.atomic); returns how many.

        Only for a work directory that no other run is writing at the same time."""
        from .atomic import TEMPORARY_GLOB

        stale = [p for p in self.root.rglob(TEMPORARY_GLOB) if p.is_file()] \
            if self.root.is_dir() else []
        for path in stale:
            path.unlink(missing_ok=True)
        # A model folder written beside model/ by a run killed before the swap (pipeline.bundle).
        folders = [p for p in self.root.glob(TEMPORARY_GLOB) if p.is_dir()] \
            if self.root.is_dir() else []
        for path in folders:
            shutil.rmtree(path, ignore_errors=True)
        return len(stale) + len(folders)

    def require(self, path: Path, produced_by: str) -> Path:
        from .atomic import require

        return require(path, produced_by)


def _holder(fh) -> str:
    """Who the lock file says holds it: "pid P on HOST (`COMMAND`, since T)"."""
    fh.seek(0)
    try:
        info = json.loads(fh.read() or "null")
    except ValueError:
        info = None
    if not isinstance(info, dict):
        return "unknown process"
    return (f"pid {info.get('pid')} on {info.get('host')} (`{info.get('command')}`, since "
            f"{info.get('started')})")
