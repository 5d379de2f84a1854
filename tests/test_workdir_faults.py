"""Work directories under concurrency and damage (README "Damaged or shared work directories"):
one writer at a time, stale locks taken over, damaged artifacts refused by name (or rebuilt,
for the embeddings cache), mixed directories refused, failed writes leaving the previous
artifact. Never a traceback."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from datasets import generate_catalog
from tests.conftest import ROOT, run_cli

CANDIDATES = "rerun `python cli.py candidates`"
TRAIN = "rerun `python cli.py train-ranker`"


@dataclass(frozen=True)
class Fault:
    path: str                   # relative to the work directory
    command: str                # the next command, which reads it
    exit: int                   # 2: refused naming the file; 0: rebuilt (cache entries)
    message: str = ""


FAULTS = {
    "damaged-postings": Fault("postings.parquet", "train-ranker", 2, CANDIDATES),
    "damaged-candidates-table": Fault("candidates.parquet", "train-ranker", 2, CANDIDATES),
    "damaged-candidates-report": Fault("candidates.json", "train-ranker", 2, CANDIDATES),
    "damaged-embeddings-vectors": Fault("embeddings/tfidf_char/vectors.npy", "train-ranker", 0),
    "damaged-embeddings-manifest": Fault("embeddings/tfidf/manifest.json", "train-ranker", 0),
    "damaged-neighbours": Fault("neighbours/tfidf.index.npy", "train-ranker", 2, CANDIDATES),
    "damaged-features": Fault("features.parquet", "ablate", 2, TRAIN),
    "damaged-features-report": Fault("features.json", "ablate", 2, TRAIN),
    "damaged-oof-scores": Fault("oof_scores.parquet", "report", 2, TRAIN),
    "damaged-metrics": Fault("metrics.json", "report", 2, TRAIN),
    "damaged-model-schema": Fault("model/schema.json", "submit", 2, ""),
    "damaged-model-booster": Fault("model/ranker.lgb.txt", "submit", 2, "cannot be read"),
}


def _main(*argv: str, capsys):
    """``cli.main`` in this interpreter; an exception escaping it fails the test."""
    import cli

    capsys.readouterr()
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished `candidates` + `train-ranker` run (40 generated products, k 10, 3 folds)."""
    import cli

    root = tmp_path_factory.mktemp("faults")
    generate_catalog(n_products=40, seed=3).write_csv(root / "train.csv")
    generate_catalog(n_products=30, seed=8).write_csv(root / "other.csv")
    assert cli.main(["candidates", "--postings", str(root / "train.csv"), "--work",
                     str(root / "w"), "--k", "10"]) == 0
    assert cli.main(["train-ranker", "--work", str(root / "w"), "--folds", "3"]) == 0
    return root


def _copy(trained: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained / "w", tmp_path / "w")
    return tmp_path / "w"


def _next_command(command: str, work: Path, trained: Path, tmp_path: Path) -> list[str]:
    if command == "submit":
        return ["submit", "--postings", str(trained / "other.csv"), "--model", str(work),
                "--out", str(tmp_path / "sub.csv")]
    return [command, "--work", str(work), *(["--folds", "3"] if command != "report" else [])]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
@pytest.mark.parametrize("name", list(FAULTS))
def test_damaged_artifact(name, damage, trained, tmp_path, capsys, monkeypatch):
    fault = FAULTS[name]
    monkeypatch.chdir(tmp_path)
    work = _copy(trained, tmp_path)
    target = work / fault.path
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] if damage == "truncated"
                       else b"\x00garbage\xff" * 7)
    code, err = _main(*_next_command(fault.command, work, trained, tmp_path), capsys=capsys)
    assert "Traceback" not in err, err
    assert code == fault.exit, err
    if fault.exit == 2:
        line = _one_error_line(err)
        assert fault.path.split("/")[-1] in line and fault.message in line, line
    else:  # the cache entry is rebuilt with a warning, and the result is the clean run's
        assert "recomputing" in err, err
        assert json.loads((work / "metrics.json").read_text())["f1"] == \
            json.loads((trained / "w" / "metrics.json").read_text())["f1"]
        if target.suffix == ".json":  # the manifest records seconds: only its key is stable
            assert json.loads(target.read_text())["key"] == json.loads(data)["key"]
        else:
            assert target.read_bytes() == data


@pytest.mark.parametrize("swapped, message", [
    ("postings.parquet", "not the postings candidates.json was built from"),
    ("candidates.parquet", "not the pairs candidates.json describes|out of range"),
])
def test_mixed_work_directory_is_refused(swapped, message, trained, tmp_path, capsys):
    """An artifact from another catalog's run → exit 2 naming the stage to rerun."""
    work = _copy(trained, tmp_path)
    code, _ = _main("candidates", "--postings", str(trained / "other.csv"), "--work",
                    str(tmp_path / "other"), "--k", "10", capsys=capsys)
    assert code == 0
    shutil.copy(tmp_path / "other" / swapped, work / swapped)
    code, err = _main("train-ranker", "--work", str(work), "--folds", "3", capsys=capsys)
    line = _one_error_line(err)
    assert code == 2 and re.search(message, line) and CANDIDATES in line, line


def test_features_of_other_candidates_are_refused(trained, tmp_path, capsys):
    """`ablate` and `report` refuse features / scores that train-ranker made from other
    candidates than the directory now holds."""
    work = _copy(trained, tmp_path)
    report = json.loads((work / "candidates.json").read_text())
    report["candidates_fingerprint"] = "0" * 64
    (work / "candidates.json").write_text(json.dumps(report))
    for argv, name in ((["ablate", "--work", str(work), "--folds", "3"], "features.parquet"),
                       (["report", "--work", str(work)], "metrics.json")):
        code, err = _main(*argv, capsys=capsys)
        line = _one_error_line(err)
        assert code == 2 and name in line and TRAIN in line, line


HOLD = ("import sys, time\nfrom common.workdir import WorkDir\n"
        "with WorkDir(sys.argv[1]).lock('train-ranker'):\n"
        "    print('held', flush=True)\n    time.sleep(120)\n")


def _holder(work: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(work)], stdout=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_second_writer_is_refused_and_a_killed_writers_lock_is_taken_over(trained, tmp_path,
                                                                          capsys):
    work = _copy(trained, tmp_path)
    holder = _holder(work)
    try:
        for argv in (["train-ranker", "--work", str(work), "--folds", "3"],
                     ["candidates", "--postings", str(trained / "train.csv"), "--work",
                      str(work), "--k", "10"],
                     ["ablate", "--work", str(work), "--folds", "3"],
                     ["report", "--work", str(work)]):  # a reader refuses a live writer too
            code, err = _main(*argv, capsys=capsys)
            line = _one_error_line(err)
            assert code == 2 and f"pid {holder.pid}" in line and "`train-ranker`" in line, line
            assert str(work) in line, line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, err = _main("train-ranker", "--work", str(work), "--folds", "3", capsys=capsys)
    assert code == 0 and "stale lock" in err and f"pid {holder.pid}" in err, err
    code, err = _main("train-ranker", "--work", str(work), "--folds", "3", capsys=capsys)
    assert code == 0 and "stale lock" not in err, err  # released cleanly this time


def test_sigkilled_cli_writer_leaves_a_lock_the_next_run_takes_over(trained, tmp_path):
    work = _copy(trained, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "train-ranker", "--work",
                               str(work), "--folds", "3"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (work / ".lock").read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    if writer.poll() is not None:
        pytest.skip("train-ranker finished before it could be killed")
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    done = run_cli("train-ranker", "--work", str(work), "--folds", "3", cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "stale lock" in done.stderr, done.stderr
    assert json.loads((work / "metrics.json").read_text())["f1"] == \
        json.loads((trained / "w" / "metrics.json").read_text())["f1"]


@pytest.mark.parametrize("limit_kb, artifact", [(64, "features.parquet"),
                                                (256, "model/ranker.lgb.txt")])
def test_write_over_the_file_size_limit(limit_kb, artifact, trained, tmp_path):
    """`ulimit -f`: exit 2 naming the file, no partial file under a final name, the previous
    artifact (and the whole previous model folder) intact."""
    work = _copy(trained, tmp_path)
    before = {p.relative_to(work): p.read_bytes() for p in work.rglob("*") if p.is_file()}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    done = subprocess.run(["bash", "-c", f"ulimit -f {limit_kb}; exec {sys.executable} "
                           f"{ROOT / 'cli.py'} train-ranker --work {work} --folds 3"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 2, done.stderr
    line = _one_error_line(done.stderr)
    assert "File too large" in line, line
    assert (work / artifact).read_bytes() == before[Path(artifact)]
    assert not [p for p in work.rglob(".*.tmp")], list(work.rglob(".*.tmp"))
    model = {k: v for k, v in before.items() if k.parts[0] == "model"}
    assert {p.relative_to(work): p.read_bytes() for p in (work / "model").rglob("*")
            if p.is_file()} == model


def test_python_api_raises_input_error(trained, tmp_path):
    """The Python API's one documented error type for the same faults."""
    from common.errors import InputError
    from pipeline import Candidates, Matcher, ablate_work_dir

    work = _copy(trained, tmp_path)
    holder = _holder(work)
    try:
        with pytest.raises(InputError, match=f"pid {holder.pid}"):
            Matcher(k=10, cache_dir=work).find_candidates(trained / "train.csv")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    (work / "candidates.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(InputError, match="candidates.parquet.*truncated or damaged"):
        Candidates.load(work)
    (work / "features.parquet").write_bytes(b"")
    with pytest.raises(InputError, match="features.parquet"):
        ablate_work_dir(work, folds=3)
    (work / "model" / "ranker.lgb.txt").write_bytes(b"tree\ngarbage")
    with pytest.raises(InputError, match="ranker.lgb.txt"):
        Matcher.load(work)


def test_every_readme_case_is_tested():
    """README's "Damaged or shared work directories" table lists the fault cases here."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Damaged or shared work directories", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.M))
    tested = set(FAULTS) | {"mixed-work-directory", "features-of-other-candidates",
                            "second-writer", "stale-lock", "write-over-file-size-limit"}
    assert listed == tested, (sorted(tested - listed), sorted(listed - tested))
