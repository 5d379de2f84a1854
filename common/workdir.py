"""Where each stage reads and writes inside a work directory.

Stages hand each other files, not objects: any stage can be rerun from what the previous one left.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files a killed run left behind (see common.atomic); returns how many.

        Only for a work directory that no other run is writing at the same time."""
        from .atomic import TEMPORARY_GLOB

        stale = [p for p in self.root.rglob(TEMPORARY_GLOB) if p.is_file()] \
            if self.root.is_dir() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def require(self, path: Path, produced_by: str) -> Path:
        from .errors import InputError

        if not path.exists():
            raise InputError(f"missing; run `python cli.py {produced_by}` first", file=str(path))
        return path
