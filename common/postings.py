"""The postings table: loading from CSV or parquet, and validation at the boundary.

Every problem is reported as an :class:`InputError` naming the file, the 1-based data row and the
column, so the command line can print one clear line and exit with status 2.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path

import polars as pl

from .errors import InputError

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("posting_id", "title")
OPTIONAL_COLUMNS = ("image", "image_phash", "label_group", "source")
# Titles longer than this are cut: a seller title is ~60 characters; 100,000-character ones are
# spam or broken exports, and would make TF-IDF and fuzzy features slow without adding signal.
MAX_TITLE_CHARS = 2000
_PHASH = re.compile(r"^[0-9a-fA-F]{16}$")
# Absolute (POSIX, UNC or drive-letter) paths, any '..' component, or a NUL byte.
_ESCAPING_IMAGE = re.compile(r"^[/\\]|^[A-Za-z]:|(^|[/\\])\.\.([/\\]|$)|\x00")


def load_postings(path: str | Path) -> pl.DataFrame:
    """Read and validate a postings file (``.csv`` or ``.parquet``).

    Returns a DataFrame with string columns ``posting_id``, ``title`` (never null), and where the
    file has them ``image``, ``image_phash`` (lower-case hex), ``label_group`` and ``source``
    (the shop or feed a posting came from); extra columns are kept. Row order is the file's
    order: row ``k`` of every array downstream is this row.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "not a file", file=name)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = _read_parquet(path)
    else:
        frame = _read_csv(path)
    return validate_postings(frame, name)


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for corrupt files
        raise InputError(f"not a readable parquet file ({exc.__class__.__name__}: {exc})",
                         file=str(path)) from None
    columns = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype.is_float():  # a float NaN (pandas' "missing") is a missing value, not "NaN"
            column = column.fill_nan(None)
        if not (dtype.is_numeric() or dtype in (pl.String, pl.Boolean, pl.Categorical, pl.Null)):
            raise InputError(f"column of type {dtype} cannot be read as text", file=str(path),
                             column=name)
        columns.append(column.cast(pl.String))
    return frame.select(columns)


def _read_csv(path: Path) -> pl.DataFrame:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        raise InputError("file is empty", file=str(path))
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError("the file is UTF-16 text; save it as UTF-8", file=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        row, column = _locate_offset(raw, exc.start)
        raise InputError(f"bytes that are not UTF-8 ({raw[exc.start:exc.end]!r})",
                         file=str(path), row=row, column=column) from None
    if "\r" in text and "\n" not in text:  # classic Mac line ends: a bare CR ends each line
        text = text.replace("\r", "\n")
    header = next(csv.reader([text.split("\n", 1)[0].rstrip("\r")]), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError("the header names this column more than once", file=str(path),
                         column=repeated[0])
    try:
        return pl.read_csv(io.StringIO(text), infer_schema=False, quote_char='"')
    except Exception as exc:
        polars_reason = str(exc).splitlines()[0]
    return _read_csv_leniently(text, str(path), polars_reason)


def _read_csv_leniently(text: str, name: str, polars_reason: str) -> pl.DataFrame:
    """Second reading, by Python's csv module, of a file polars refused.

    Python's reader (like pandas) keeps a quote inside an unquoted field as a literal character
    (``5" screen``), which polars refuses; what it too cannot read is reported with its row.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str | None]] = []
    try:
        header = next(reader)
        for fields in reader:
            if len(fields) > len(header):
                raise InputError(f"{len(fields)} fields but the header names {len(header)}",
                                 file=name, row=len(rows) + 1)
            rows.append(fields + [None] * (len(header) - len(fields)))
    except csv.Error as exc:
        raise InputError(f"not a well-formed CSV file ({exc}; polars: {polars_reason})",
                         file=name, row=len(rows) + 1) from None
    return pl.DataFrame(rows, schema={c: pl.String for c in header}, orient="row")


def _locate_offset(raw: bytes, offset: int) -> tuple[int | None, str | None]:
    """Data row and column holding byte ``offset`` (assumes no newline inside quoted fields);
    ``None`` for what cannot be told (the offset lies in the header, or the line is not CSV)."""
    line_start = raw.rfind(b"\n", 0, offset) + 1
    row = raw.count(b"\n", 0, line_start)  # header is line 0, so this is the 1-based data row
    if row == 0:
        return None, None
    try:
        header = next(csv.reader([raw.split(b"\n", 1)[0].decode("utf-8", "replace")
                                  .rstrip("\r")]))
        fields = next(csv.reader([raw[line_start:offset].decode("utf-8", "replace") + "x"]))
    except csv.Error:
        return row, None
    column = header[len(fields) - 1] if 0 < len(fields) <= len(header) else None
    return row, column


def validate_postings(frame: pl.DataFrame, name: str = "<postings>") -> pl.DataFrame:
    """Check a postings table per DESIGN.md and return it normalised (see :func:`load_postings`)."""
    for column in REQUIRED_COLUMNS:
        if column not in frame.columns:
            raise InputError(f"required column is missing (found: {', '.join(frame.columns)})",
                             file=name, column=column)
    if frame.height == 0:
        raise InputError("no postings (the file has a header and no rows)", file=name)
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in frame.columns)

    ids = frame["posting_id"]
    blank = ids.is_null() | (ids.str.strip_chars() == "")
    if blank.any():
        raise InputError("posting_id is empty", file=name, row=_first(blank), column="posting_id")
    spaced = ids.str.contains(r"\s")
    if spaced.any():  # the submission lists matches separated by spaces
        row = _first(spaced)
        raise InputError(f"posting_id {ids[row - 1]!r} contains white space, which the "
                         "submission format uses to separate ids", file=name, row=row,
                         column="posting_id")
    repeated = ~ids.is_first_distinct()
    if repeated.any():
        row = _first(repeated)
        first = _first(ids == ids[row - 1])
        raise InputError(f"duplicate posting_id {ids[row - 1]!r} (first in row {first})",
                         file=name, row=row, column="posting_id")

    titles = frame["title"].fill_null("")
    too_long = titles.str.len_chars() > MAX_TITLE_CHARS
    if too_long.any():
        log.warning(f"{name}: {int(too_long.sum())} titles longer than {MAX_TITLE_CHARS} "
                    "characters were cut to that length")
        titles = titles.str.slice(0, MAX_TITLE_CHARS)
    frame = frame.with_columns(titles.alias("title"))

    if "image_phash" in frame.columns:
        phash = frame["image_phash"].str.strip_chars()
        bad = phash.is_not_null() & ~phash.str.contains(_PHASH.pattern)
        if bad.any():
            row = _first(bad)
            raise InputError(f"image_phash {phash[row - 1]!r} is not 16 hexadecimal digits",
                             file=name, row=row, column="image_phash")
        frame = frame.with_columns(phash.str.to_lowercase().alias("image_phash"))

    if "image" in frame.columns:
        image = frame["image"]
        escapes = image.is_not_null() & (
            image.str.contains(_ESCAPING_IMAGE.pattern) | (image.str.strip_chars() == ""))
        if escapes.any():
            row = _first(escapes)
            raise InputError(f"image name {image[row - 1]!r} leaves the images folder "
                             "(empty names, absolute paths and '..' are refused)",
                             file=name, row=row, column="image")

    if "label_group" in frame.columns:
        labels = frame["label_group"]
        missing = labels.is_null() | (labels.str.strip_chars() == "")
        if missing.any() and not missing.all():
            raise InputError("label_group is empty; a labelled catalog needs a label on every row",
                             file=name, row=_first(missing), column="label_group")
        if missing.all():
            frame = frame.drop("label_group")
    return frame


def _first(mask: pl.Series) -> int:
    """1-based row of the first true value of ``mask``."""
    return int(mask.arg_true()[0]) + 1


def has_labels(postings: pl.DataFrame) -> bool:
    return "label_group" in postings.columns


def label_codes(postings: pl.DataFrame):
    """Integer code per row for ``label_group`` (equal codes = same product)."""
    import numpy as np

    _, codes = np.unique(postings["label_group"].to_numpy().astype(str), return_inverse=True)
    return codes.astype(np.int64)


def fingerprint(postings: pl.DataFrame, columns: tuple[str, ...] = ("posting_id", "title")) -> str:
    """Hash of the posting order and the given columns: keys caches, detects stale ones."""
    import hashlib

    digest = hashlib.sha256()
    for column in columns:
        if column in postings.columns:
            digest.update(column.encode())
            digest.update(postings[column].fill_null("\x00<null>").str.join("\x1f")[0].encode())
    return digest.hexdigest()
