"""Pair labels: a table of ``posting_id_a, posting_id_b, match[, source]`` rows saying whether
two postings are the same product, for catalogs without a ``label_group`` on every posting.

``match`` is ``true`` / ``false`` (also ``1``/``0``, ``yes``/``no``, any case) or ``unsure``
(an answer that keeps the pair out of training and out of the next questions). A pair answered
more than once keeps its last answer, so the file can be an append-only log: the ``label``
command appends one line per answer (:class:`LabelLog`) and never rewrites earlier ones.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from .atomic import write_text
from .errors import InputError

COLUMNS = ("posting_id_a", "posting_id_b", "match", "source")
REQUIRED = COLUMNS[:3]
ANSWERS = {"true": 1, "1": 1, "yes": 1, "y": 1, "false": 0, "0": 0, "no": 0, "n": 0,
           "unsure": -1}
UNSURE = -1


@dataclass
class PairLabels:
    """Labelled pairs as row indices into a postings table: ``i < j``, ``match`` 1 / 0 / −1
    (unsure), one row per pair (the last answer), in the order first answered."""

    i: np.ndarray
    j: np.ndarray
    match: np.ndarray
    source: list[str]

    def __len__(self) -> int:
        return len(self.i)

    @property
    def answered(self) -> np.ndarray:
        """Rows with a yes or no answer (not unsure)."""
        return self.match >= 0

    @property
    def positives(self) -> int:
        return int((self.match == 1).sum())

    @property
    def negatives(self) -> int:
        return int((self.match == 0).sum())

    def keys(self, n: int) -> np.ndarray:
        return self.i.astype(np.int64) * n + self.j

    @classmethod
    def empty(cls) -> PairLabels:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8), [])

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, posting_ids: pl.Series,
                   name: str = "<labels frame>") -> PairLabels:
        """Validate a labels table against the postings' ids (errors name file, row, column)."""
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}; a labels table has the columns "
                             f"{', '.join(REQUIRED)} (and optionally source)", file=name,
                             column=missing[0])
        position = {pid: k for k, pid in enumerate(posting_ids.to_list())}
        ends = []
        for column in ("posting_id_a", "posting_id_b"):
            ids = frame[column].cast(pl.String)
            index = np.array([position.get(pid, -1) for pid in ids.to_list()], dtype=np.int64)
            bad = np.flatnonzero(index < 0)
            if len(bad):
                raise InputError(f"posting id {ids[int(bad[0])]!r} is not in the postings",
                                 file=name, row=int(bad[0]) + 1, column=column)
            ends.append(index)
        a, b = ends
        same = np.flatnonzero(a == b)
        if len(same):
            raise InputError("a posting paired with itself", file=name, row=int(same[0]) + 1,
                             column="posting_id_b")
        answers = frame["match"].cast(pl.String).str.strip_chars().str.to_lowercase()
        match = np.array([ANSWERS.get(v, -2) if v is not None else -2
                          for v in answers.to_list()], dtype=np.int8)
        bad = np.flatnonzero(match == -2)
        if len(bad):
            raise InputError(f"match {frame['match'][int(bad[0])]!r} is not one of true, false, "
                             f"unsure", file=name, row=int(bad[0]) + 1, column="match")
        source = (frame["source"].cast(pl.String).fill_null("").to_list()
                  if "source" in frame.columns else [""] * frame.height)
        i, j = np.minimum(a, b), np.maximum(a, b)
        # The last answer per pair wins; pairs stay in the order they were first answered.
        key = i * (len(position) + 1) + j
        first = np.unique(key, return_index=True)[1]
        last = len(key) - 1 - np.unique(key[::-1], return_index=True)[1]
        keep = last[np.argsort(first, kind="stable")]
        return cls(i[keep], j[keep], match[keep], [source[k] for k in keep])

    @classmethod
    def read(cls, path: str | Path, posting_ids: pl.Series) -> PairLabels:
        """A labels CSV (or parquet) file; a last line cut short by a crash is ignored."""
        path = Path(path)
        if not path.is_file():
            raise InputError("labels file not found", file=str(path))
        if path.suffix.lower() in (".parquet", ".pq"):
            try:
                frame = pl.read_parquet(path)
            except Exception as exc:  # polars raises several types for corrupt files
                raise InputError(f"not a readable parquet file ({exc})", file=str(path)) from None
        else:
            frame = _read_labels_csv(path)
        return cls.from_frame(frame, posting_ids, str(path))


def _read_labels_csv(path: Path) -> pl.DataFrame:
    text = path.read_bytes().decode("utf-8", errors="replace")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a line cut short by a crash: never a whole answer
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return pl.DataFrame({c: [] for c in REQUIRED}, schema={c: pl.String for c in REQUIRED})
    header, body = rows[0], rows[1:]
    for number, row in enumerate(body, start=1):
        if len(row) != len(header):
            raise InputError(f"{len(row)} fields, the header has {len(header)}", file=str(path),
                             row=number)
    return pl.DataFrame({name: [row[k] for row in body] for k, name in enumerate(header)},
                        schema={name: pl.String for name in header})


class LabelLog:
    """The append-only labels file of a labelling session: every answer is one CSV line,
    flushed and fsynced before the next question, so an interrupted session loses nothing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, posting_id_a: str, posting_id_b: str, match: int, source: str) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        line = io.StringIO()
        writer = csv.writer(line, lineterminator="\n")
        if new:
            writer.writerow(COLUMNS)
        answer = {1: "true", 0: "false", UNSURE: "unsure"}[match]
        writer.writerow([posting_id_a, posting_id_b, answer, source])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            handle.write(line.getvalue())  # one write: a line is there whole or not at all
            handle.flush()
            os.fsync(handle.fileno())

    def drop_last(self) -> bool:
        """Undo: the file without its last answer, replaced atomically; False if none."""
        if not self.path.exists():
            return False
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        if len(lines) <= 1:
            return False
        write_text(self.path, "".join(lines[:-1]))
        return True
