"""Bad and awkward input through the command line, as a user meets it.

Every case of the matrix ends either with exit status 2 and one line naming what is wrong, or with
the graceful handling that README's "When input is wrong" documents; never a traceback, and a
refused run leaves no output file (and no temporary file) behind.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl
import pytest

from datasets import generate_catalog
from common.postings import MAX_TITLE_CHARS
from tests.conftest import readme_cases, run_cli

HEADER = "posting_id,title,image_phash,label_group\n"
ROWS = [
    "p1,Paper Bag Victoria Secret,94974f937d4c2433,g1\n",
    "p2,Double Tape 3M VHB 12 mm,af3f9460c2838f0f,g2\n",
    "p3,Paper Bag Victoria Secret Pink,94974f937d4c2433,g1\n",
]
GOOD = HEADER + "".join(ROWS)
CANDIDATE_OUTPUTS = ("postings.parquet", "candidates.parquet", "candidates.json", "neighbours")


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Case:
    """One row of the matrix: files to write, the command to run on them, what must happen.

    ``postings`` is written as ``postings.<suffix>``; ``images`` (name → bytes) into ``images/``.
    ``check(folder, stderr)`` makes case-specific assertions on a successful run.
    """

    postings: bytes | None
    exit: int = 2
    message: str = ""
    command: str = "candidates"
    suffix: str = "csv"
    images: dict[str, bytes] | None = None
    args: tuple[str, ...] = ()
    check: Callable[[Path, str], None] | None = field(default=None, compare=False)


def _titles(folder: Path) -> list[str]:
    return pl.read_parquet(folder / "w" / "postings.parquet")["title"].to_list()


def _check_long_title(folder: Path, err: str) -> None:
    assert len(_titles(folder)[0]) == MAX_TITLE_CHARS
    assert f"1 titles longer than {MAX_TITLE_CHARS} characters were cut" in err


def _check_missing_titles(folder: Path, err: str) -> None:
    assert _titles(folder) == ["", "", "Double Tape 3M VHB 12 mm"]


def _check_nan_titles(folder: Path, err: str) -> None:
    assert _titles(folder) == ["", "", "1.5"]


def _check_literal_quote(folder: Path, err: str) -> None:
    assert _titles(folder) == ['TV 32" LED', "TV 32 inch LED"]


def _check_same_as_good(folder: Path, err: str) -> None:
    postings = pl.read_parquet(folder / "w" / "postings.parquet")
    assert postings.columns == ["posting_id", "title", "image_phash", "label_group"]
    assert postings["label_group"].to_list() == ["g1", "g2", "g1"]
    assert postings["title"].to_list()[1] == "Double Tape 3M VHB 12 mm"


def _check_images(folder: Path, err: str) -> None:
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "2 images missing or unreadable" in warnings[0], err
    manifest = json.loads((folder / "w" / "embeddings" / "phash" / "manifest.json").read_text())
    assert manifest["missing"] == 3  # missing file, corrupt file, no image named


def _check_one_posting(folder: Path, err: str) -> None:
    report = json.loads((folder / "w" / "candidates.json").read_text())
    assert report["rows"] == 1 and report["pairs"] == 0


def _check_submission_of_one(folder: Path, err: str) -> None:
    assert (folder / "sub.csv").read_text() == "posting_id,matches\nonly,only\n"


def _check_capped_at_50(folder: Path, err: str) -> None:
    # The saved post-processing keeps at most 50 matches a posting (Shopee's rule) however
    # often a product is posted. How many of 300 copies of one product the small model scores
    # as matches is its guess far outside its training catalog, whose products are posted a
    # few times (the adapted case below flags the catalog as unlike it): the score-graph
    # features of its second stage score them 0.4-0.98 since photo bridges reshaped its
    # training pairs (median 0.94 with --bridges off).
    sizes = pl.read_csv(folder / "sub.csv")["matches"].str.split(" ").list.len()
    assert sizes.len() == 300 and (sizes <= 50).all() and (sizes > 1).any(), \
        sizes.value_counts()


def _check_one_match_each(folder: Path, err: str) -> None:
    # 300 copies of one product score unlike the training catalog: matched conservatively
    sizes = pl.read_csv(folder / "sub.csv")["matches"].str.split(" ").list.len()
    assert sizes.len() == 300 and (sizes <= 2).all(), sizes.value_counts()
    assert "differs from the one the model was trained on" in err


def _check_colliding_ids(folder: Path, err: str) -> None:
    sub = pl.read_csv(folder / "sub.csv")
    assert sub["posting_id"].to_list() == [f"demo-{k}" for k in range(20)]


def _same_product(n: int) -> bytes:
    return "".join(["posting_id,title,image_phash\n"] + [
        f"x{k},wardah serum wajah 100 ml,0123456789abcdef\n" for k in range(n)]).encode()


MATRIX = {
    # --- structure of the file
    "missing-title-column": Case(b"posting_id,image_phash\np1,94974f937d4c2433\n",
                                 message=r"column 'title': required column is missing"),
    "missing-id-column": Case(b"title\nred shoe\n",
                              message=r"column 'posting_id': required column is missing"),
    "empty-file": Case(b"", message=r"postings\.csv: file is empty"),
    "header-only": Case(HEADER.encode(), message=r"no postings"),
    "header-named-twice": Case(b"posting_id,title,title\np1,a,b\n",
                               message=r"column 'title': the header names this column more"),
    "ragged-row": Case((HEADER + ROWS[0] + "p2,a,b,c,d,e\n").encode(),
                       message=r"row 2: 6 fields but the header names 4"),
    "unterminated-quote": Case((HEADER + ROWS[0] + 'p2,"open quote,af3f9460c2838f0f,g\n').encode(),
                               message=r"row 2: not a well-formed CSV file"),
    "file-not-found": Case(None, message=r"postings\.csv: file not found"),
    "corrupt-parquet": Case(b"PAR1 not really parquet", suffix="parquet",
                            message=r"not a readable parquet file"),
    "parquet-list-column": Case(_parquet(pl.DataFrame({"posting_id": ["a"], "title": ["t"],
                                                       "tags": [["x", "y"]]})), suffix="parquet",
                                message=r"column 'tags': column of type List"),
    # --- ids
    "duplicate-ids": Case((GOOD + ROWS[0]).encode(),
                          message=r"row 4, column 'posting_id': duplicate posting_id 'p1' "
                                  r"\(first in row 1\)"),
    "empty-id": Case((HEADER + ",red shoe,,g\n").encode(),
                     message=r"row 1, column 'posting_id': posting_id is empty"),
    "id-with-space": Case((HEADER + "p 1,red shoe,,g\n").encode(),
                          message=r"row 1, column 'posting_id': .* contains white space"),
    # --- titles
    "empty-and-null-titles": Case(
        _parquet(pl.DataFrame({"posting_id": ["a", "b", "c"],
                               "title": ["", None, "Double Tape 3M VHB 12 mm"]})),
        suffix="parquet", exit=0, check=_check_missing_titles),
    "nan-titles": Case(  # pandas writes a missing title as a float NaN column value
        _parquet(pl.DataFrame({"posting_id": ["a", "b", "c"],
                               "title": [float("nan"), None, 1.5]})),
        suffix="parquet", exit=0, check=_check_nan_titles),
    "empty-titles-csv": Case(b"posting_id,title\na,\nb,\"\"\nc,Double Tape 3M VHB 12 mm\n",
                             exit=0, check=_check_missing_titles),
    "100000-character-title": Case(f"posting_id,title\na,{'x' * 100_000}\nb,red shoe\n".encode(),
                                   exit=0, check=_check_long_title),
    "quote-inside-title": Case(b'posting_id,title\na,TV 32" LED\nb,TV 32 inch LED\n', exit=0,
                               check=_check_literal_quote),
    # --- encodings and line ends
    "undecodable-bytes": Case((HEADER + ROWS[0]).encode() + b"p2,Tas \xff\xfe kulit,,g2\n",
                              message=r"row 2, column 'title': bytes that are not UTF-8"),
    "latin-1-file": Case("posting_id,title\na,caf\xe9 latte\n".encode("latin-1"),
                         message=r"row 1, column 'title': bytes that are not UTF-8"),
    "utf-16-file": Case(GOOD.encode("utf-16"), message=r"UTF-16 text; save it as UTF-8"),
    "byte-order-mark": Case(b"\xef\xbb\xbf" + GOOD.encode(), exit=0, check=_check_same_as_good),
    "crlf-line-ends": Case(GOOD.replace("\n", "\r\n").encode(), exit=0, check=_check_same_as_good),
    "bare-cr-line-ends": Case(GOOD.replace("\n", "\r").encode(), exit=0,
                              check=_check_same_as_good),
    # --- perceptual hashes
    "malformed-phash": Case((HEADER + "p1,red shoe,zz974f937d4c2433,g\n").encode(),
                            message=r"row 1, column 'image_phash': image_phash 'zz974f937d4c2433' is not 16"),
    "short-phash": Case((GOOD + "p4,red shoe,94974f93,g\n").encode(),
                        message=r"row 4, column 'image_phash': image_phash '94974f93' is not 16"),
    # --- images
    "image-leaves-folder": Case(b"posting_id,title,image\na,red shoe,../x.jpg\n",
                                message=r"row 1, column 'image': image name '\.\./x\.jpg' leaves"),
    "image-absolute-path": Case(b"posting_id,title,image\na,red shoe,ok.jpg\nb,x,/etc/passwd\n",
                                message=r"row 2, column 'image': .*leaves the images folder"),
    "image-drive-path": Case(b"posting_id,title,image\na,red shoe,C:\\x.jpg\n",
                             message=r"row 1, column 'image': .*leaves the images folder"),
    "missing-and-corrupt-images": Case(
        b"posting_id,title,image\na,red shoe,good.png\nb,red shoes,gone.jpg\n"
        b"c,blue shoe,corrupt.jpg\nd,blue shoes,\n",
        images={"good.png": _png(), "corrupt.jpg": b"\xff\xd8\xff not a jpeg"}, exit=0,
        args=("--embedders", "tfidf,phash"), check=_check_images),
    "images-folder-missing": Case(b"posting_id,title,image\na,red shoe,a.jpg\n",
                                  args=("--images", "no/such/folder"),
                                  message=r"no/such/folder: images folder not found"),
    # --- catalog shapes
    "one-posting": Case(b"posting_id,title,image_phash\nonly,red shoe,0123456789abcdef\n",
                        exit=0, check=_check_one_posting),
    "one-posting-submit": Case(b"posting_id,title,image_phash\nonly,red shoe,0123456789abcdef\n",
                               command="submit", exit=0, check=_check_submission_of_one),
    "one-product-300-times": Case(_same_product(300), command="submit", exit=0,
                                  args=("--adapt", "never"), check=_check_capped_at_50),
    "one-product-300-times-adapted": Case(_same_product(300), command="submit", exit=0,
                                          check=_check_one_match_each),
    "ids-collide-with-train": Case(
        b"".join([b"posting_id,title\n"] + [f"demo-{k},kabel data usb {k % 3} m\n".encode()
                                            for k in range(20)]),
        command="submit", exit=0, check=_check_colliding_ids),
    "duplicate-ids-submit": Case((GOOD + ROWS[1]).encode(), command="submit",
                                 message=r"row 4, column 'posting_id': duplicate posting_id 'p2'"),
    "partial-labels": Case((GOOD + "p4,red shoe,94974f937d4c2433,\n").encode(),
                           message=r"row 4, column 'label_group': .*needs a label on every row"),
}


@dataclass(frozen=True)
class Finished:
    returncode: int
    stderr: str


def run_in_process(*argv: str, capsys) -> Finished:
    """``cli.main`` in this interpreter: the matrix's dozens of runs would spend most of their
    time importing libraries in fresh processes. An exception escaping ``main`` (what a user
    would see as a traceback) fails the test; `test_matrix_cases_as_processes` runs a few cases
    as real processes."""
    import cli

    capsys.readouterr()
    returncode = cli.main(list(argv))
    return Finished(returncode, capsys.readouterr().err)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> Path:
    """One small model for every `submit` case (default k = 50, so a 300-posting product can
    fill all 50 matches)."""
    import cli

    root = tmp_path_factory.mktemp("robust-model")
    generate_catalog(n_products=80, seed=5).write_csv(root / "train.csv")
    assert cli.main(["candidates", "--postings", str(root / "train.csv"),
                     "--work", str(root / "w")]) == 0
    assert cli.main(["train-ranker", "--work", str(root / "w"), "--folds", "3"]) == 0
    return root / "w" / "model"


def _run_case(case: Case, folder: Path, model: Path | None, run: Callable):
    postings = folder / f"postings.{case.suffix}"
    if case.postings is not None:
        postings.write_bytes(case.postings)
    args = list(case.args)
    if case.images is not None:
        (folder / "images").mkdir()
        for name, content in case.images.items():
            (folder / "images" / name).write_bytes(content)
        args += ["--images", str(folder / "images")]
    if case.command == "candidates":
        return run("candidates", "--postings", str(postings), "--work", str(folder / "w"), *args)
    return run("submit", "--postings", str(postings), "--model", str(model),
               "--out", str(folder / "sub.csv"), *args)


def _assert_outcome(case: Case, folder: Path, done) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == case.exit, done.stderr
    leftovers = list(folder.rglob(".*.tmp"))
    assert not leftovers, leftovers
    if case.exit == 2:
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("error: "), done.stderr
        assert re.search(case.message, errors[0]), errors[0]
        written = [n for n in CANDIDATE_OUTPUTS if (folder / "w" / n).exists()]
        assert not written and not (folder / "sub.csv").exists(), written
    else:
        assert case.check is not None
        case.check(folder, done.stderr)


@pytest.mark.parametrize("name", list(MATRIX))
def test_bad_input_matrix(name, tmp_path, request, capsys, monkeypatch):
    case = MATRIX[name]
    monkeypatch.chdir(tmp_path)
    model = request.getfixturevalue("trained_model") if case.command == "submit" else None
    done = _run_case(case, tmp_path, model, lambda *argv: run_in_process(*argv, capsys=capsys))
    _assert_outcome(case, tmp_path, done)


@pytest.mark.parametrize("name", ["duplicate-ids", "undecodable-bytes", "image-leaves-folder",
                                  "missing-and-corrupt-images"])
def test_matrix_cases_as_processes(name, tmp_path):
    """The same outcome from a real `python cli.py` process (exit status, stderr, files)."""
    case = MATRIX[name]
    done = _run_case(case, tmp_path, None, lambda *argv: run_cli(*argv, cwd=tmp_path))
    _assert_outcome(case, tmp_path, done)


def test_every_readme_case_is_in_the_matrix():
    """README's "When input is wrong" table of postings files and this matrix list the same
    cases."""
    listed = readme_cases("### Postings files")
    assert listed == set(MATRIX), (sorted(set(MATRIX) - listed), sorted(listed - set(MATRIX)))


@pytest.mark.parametrize("option, value, message", [
    ("--filter-threshold", "1.5", "--filter-threshold must be in [0, 1)"),
    ("--filter-threshold", "-0.1", "--filter-threshold must be in [0, 1)"),
    ("--filter-max-pairs", "-3", "--filter-max-pairs must be at least 1"),
    ("--negative-rate", "0", "--negative-rate must be in (0, 1]"),
    ("--folds", "1", "--folds must be at least 2"),
    ("--folds", "2",
     "--folds must be at least 3 with the second stage (or turn it off: --no-stack"),
])
def test_out_of_range_training_options_are_refused_before_any_work(tmp_path, capsys, option,
                                                                   value, message):
    import cli

    returncode = cli.main(["train-ranker", "--work", str(tmp_path / "w"), option, value])
    err = capsys.readouterr().err
    assert returncode == 2 and message in err, err
    assert not (tmp_path / "w").exists()


def test_a_search_shallower_than_k_is_refused_before_any_work(tmp_path, capsys):
    import cli

    returncode = cli.main(["candidates", "--postings", str(tmp_path / "p.csv"), "--work",
                           str(tmp_path / "w"), "--k", "20", "--allocation", "global",
                           "--search-depth", "10"])
    err = capsys.readouterr().err
    assert returncode == 2 and "--search-depth must be at least k" in err, err
    assert not (tmp_path / "w").exists()
