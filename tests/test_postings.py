"""Loading and validating postings: every refusal names file, row and column."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from common.errors import InputError
from common.postings import MAX_TITLE_CHARS, load_postings
from tests.conftest import run_cli

HEADER = "posting_id,image,image_phash,title,label_group\n"
GOOD = [
    "p1,a.jpg,94974f937d4c2433,Paper Bag Victoria Secret,g1\n",
    "p2,b.jpg,af3f9460c2838f0f,Double Tape 3M VHB 12 mm,g2\n",
    "p3,c.jpg,b94cb00ed3e50f78,Maling TTS Canned Pork 397 gr,g1\n",
]


def write(tmp_path: Path, body: str | bytes, name: str = "postings.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return path


def test_good_file_loads(tmp_path):
    frame = load_postings(write(tmp_path, HEADER + "".join(GOOD)))
    assert frame.height == 3
    assert frame["posting_id"].to_list() == ["p1", "p2", "p3"]
    assert frame["image_phash"][0] == "94974f937d4c2433"


def test_parquet_loads_and_casts_labels(tmp_path):
    pl.DataFrame({"posting_id": ["a", "b"], "title": ["x", "y"], "label_group": [1, 2]}) \
        .write_parquet(tmp_path / "p.parquet")
    frame = load_postings(tmp_path / "p.parquet")
    assert frame["label_group"].dtype == pl.String


def test_bom_and_crlf_are_accepted(tmp_path):
    body = ("\ufeff" + HEADER + "".join(GOOD)).replace("\n", "\r\n").encode("utf-8")
    frame = load_postings(write(tmp_path, body))
    assert frame.columns[0] == "posting_id"
    assert frame["label_group"].to_list() == ["g1", "g2", "g1"]


def test_title_only_catalog(tmp_path):
    frame = load_postings(write(tmp_path, "posting_id,title\na,red shoe\nb,\n"))
    assert frame["title"].to_list() == ["red shoe", ""]
    assert "image_phash" not in frame.columns


def test_long_titles_are_cut(tmp_path):
    frame = load_postings(write(tmp_path, f"posting_id,title\na,{'x' * 100_000}\n"))
    assert len(frame["title"][0]) == MAX_TITLE_CHARS


@pytest.mark.parametrize("body, message, row, column", [
    ("", "file is empty", None, None),
    (HEADER, "no postings", None, None),
    ("posting_id,image\np1,a.jpg\n", "required column is missing", None, "title"),
    (HEADER + GOOD[0] + GOOD[0], "duplicate posting_id 'p1' \\(first in row 1\\)", 2, "posting_id"),
    (HEADER + GOOD[0] + ",x.jpg,94974f937d4c2433,t,g\n", "posting_id is empty", 2, "posting_id"),
    (HEADER + GOOD[0] + "p9,x.jpg,94974f93,t,g\n", "not 16 hexadecimal", 2, "image_phash"),
    (HEADER + "p9,x.jpg,zz974f937d4c2433,t,g\n", "not 16 hexadecimal", 1, "image_phash"),
    (HEADER + GOOD[0] + "p9,../x.jpg,94974f937d4c2433,t,g\n", "leaves the images folder", 2,
     "image"),
    (HEADER + "p9,/etc/passwd,94974f937d4c2433,t,g\n", "leaves the images folder", 1, "image"),
    (HEADER + GOOD[0] + "p9,x.jpg,94974f937d4c2433,t,\n", "needs a label on every row", 2,
     "label_group"),
])
def test_refusals_name_row_and_column(tmp_path, body, message, row, column):
    path = write(tmp_path, body)
    with pytest.raises(InputError, match=message) as caught:
        load_postings(path)
    assert caught.value.file == str(path)
    assert caught.value.row == row
    assert caught.value.column == column


def test_undecodable_bytes_name_row_and_column(tmp_path):
    body = (HEADER + GOOD[0]).encode() + b"p2,b.jpg,af3f9460c2838f0f,Tas \xff\xfe kulit,g2\n"
    with pytest.raises(InputError, match="not UTF-8") as caught:
        load_postings(write(tmp_path, body))
    assert (caught.value.row, caught.value.column) == (2, "title")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_postings(tmp_path / "nope.csv")


def test_cli_refusal_is_one_line_exit_2(tmp_path):
    path = write(tmp_path, HEADER + GOOD[0] + GOOD[0])
    done = run_cli("candidates", "--postings", str(path), "--work", str(tmp_path / "w"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{path}, row 2, column 'posting_id': duplicate posting_id" in done.stderr
    assert not (tmp_path / "w" / "candidates.parquet").exists()
