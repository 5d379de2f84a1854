"""Work directories, models and checkpoints under concurrency and damage (README "When input is
wrong"): one writer at a time, stale locks taken over, damaged artifacts refused by name (or
rebuilt, for the embeddings cache), mixed directories refused, failed writes leaving the previous
artifact. Never a traceback."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from datasets import generate_catalog
from tests.conftest import ROOT, readme_cases, run_cli

CANDIDATES = "rerun `python cli.py candidates`"
TRAIN = "rerun `python cli.py train-ranker`"
EMBEDDER = "rerun `python cli.py train-embedder`"
# A checkpoint the user names may be train-embedder's or their own.
GIVEN = "rerun `python cli.py train-embedder` if it wrote this file, or check the file you gave"

# The commands that read a damaged file, run inside a copy of the run's folder.
TRAIN_RANKER = ("train-ranker", "--work", "w", "--folds", "3")
ABLATE = ("ablate", "--work", "w", "--folds", "3")
REPORT = ("report", "--work", "w")
SUBMIT = ("submit", "--postings", "other.csv", "--model", "w", "--out", "sub.csv")
SUBMIT_IMAGES = ("submit", "--postings", "photos.csv", "--images", "photos", "--model", "w",
                 "--out", "sub.csv")
TEXT_CANDIDATES = ("candidates", "--postings", "train.csv", "--work", "w", "--k", "5",
                   "--embedders", "tfidf,minilm:model_path=text/final/encoder")
TORCH_CANDIDATES = ("candidates", "--postings", "photos.csv", "--images", "photos", "--work", "w2",
                    "--k", "5", "--embedders", "tfidf,image:checkpoint=image/backbone.pth:"
                    "image_size=32")


@dataclass(frozen=True)
class Fault:
    path: str                   # relative to the run's folder
    argv: tuple[str, ...]       # the next command, which reads it
    exit: int                   # 2: refused naming the file; 0: rebuilt (cache entries)
    message: str = ""
    run: str = "trained"        # the fixture that makes the run


FAULTS = {
    "damaged-postings": Fault("w/postings.parquet", TRAIN_RANKER, 2, CANDIDATES),
    "damaged-candidates-table": Fault("w/candidates.parquet", TRAIN_RANKER, 2, CANDIDATES),
    "damaged-candidates-report": Fault("w/candidates.json", TRAIN_RANKER, 2, CANDIDATES),
    "damaged-embeddings-vectors": Fault("w/embeddings/tfidf_char/vectors.npy", TRAIN_RANKER, 0),
    "damaged-embeddings-manifest": Fault("w/embeddings/tfidf/manifest.json", TRAIN_RANKER, 0),
    "damaged-neighbours": Fault("w/neighbours/tfidf.index.npy", TRAIN_RANKER, 2, CANDIDATES),
    "damaged-features": Fault("w/features.parquet", ABLATE, 2, TRAIN),
    "damaged-features-report": Fault("w/features.json", ABLATE, 2, TRAIN),
    "damaged-oof-scores": Fault("w/oof_scores.parquet", REPORT, 2, TRAIN),
    "damaged-metrics": Fault("w/metrics.json", REPORT, 2, TRAIN),
    "damaged-model-schema": Fault("w/model/schema.json", SUBMIT, 2, ""),
    "damaged-model-booster": Fault("w/model/ranker.lgb.txt", SUBMIT, 2, TRAIN),
    "damaged-xgboost-model": Fault("w/model/ranker.xgb.json", SUBMIT_IMAGES, 2, TRAIN,
                                   "image_run"),
    "damaged-text-checkpoint": Fault("text/final/encoder/model.safetensors", TEXT_CANDIDATES, 2,
                                     GIVEN, "text_checkpoint"),
    "damaged-image-checkpoint": Fault("image/final/encoder/backbone.safetensors", SUBMIT_IMAGES,
                                      2, GIVEN, "image_run"),
    "damaged-torch-checkpoint": Fault("image/backbone.pth", TORCH_CANDIDATES, 2, GIVEN,
                                      "image_run"),
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


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    """40 random photos of 20 products, an ArcFace image checkpoint trained on them for one
    step (`train-embedder`), its backbone also as a torch state dict (`image/backbone.pth`), and
    a model trained with XGBoost on candidates embedded with it. Paths are relative to the
    folder, so a copy of it uses its own checkpoint."""
    import torch
    from safetensors.torch import load_file

    import cli

    root = tmp_path_factory.mktemp("image-run")
    (root / "photos").mkdir()
    rng = np.random.default_rng(0)
    for row in range(40):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            root / "photos" / f"{row}.png")
    pl.DataFrame({"posting_id": [f"p{r}" for r in range(40)],
                  "title": [f"product {r // 2} model {r % 2}" for r in range(40)],
                  "image": [f"{r}.png" for r in range(40)],
                  "label_group": [f"g{r // 2}" for r in range(40)]}).write_csv(root / "photos.csv")
    with contextlib.chdir(root):
        assert cli.main(["train-embedder", "--modality", "image", "--postings", "photos.csv",
                         "--images", "photos", "--out", "image", "--max-steps", "1",
                         "--batch-size", "4", "--image-size", "32"]) == 0
        torch.save(load_file("image/final/encoder/backbone.safetensors"), "image/backbone.pth")
        assert cli.main(["candidates", "--postings", "photos.csv", "--images", "photos",
                         "--work", "w", "--k", "5", "--embedders",
                         "tfidf,image:checkpoint=image/final/encoder:image_size=32"]) == 0
        assert cli.main(["train-ranker", "--work", "w", "--folds", "3", "--backend", "xgboost",
                         "--no-stack", "--filter-threshold", "0"]) == 0
    return root


@pytest.fixture(scope="module")
def text_checkpoint(tmp_path_factory) -> Path:
    """An ArcFace text checkpoint (MiniLM, one step of `train-embedder`) on 24 generated
    postings."""
    import cli

    root = tmp_path_factory.mktemp("text-checkpoint")
    generate_catalog(n_products=40, seed=3).head(24).write_csv(root / "train.csv")
    with contextlib.chdir(root):
        assert cli.main(["train-embedder", "--modality", "text", "--postings", "train.csv",
                         "--out", "text", "--max-steps", "1", "--batch-size", "8",
                         "--freeze-layers", "6", "--max-seq-length", "16"]) == 0
    return root


def _copy(trained: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained / "w", tmp_path / "w")
    return tmp_path / "w"


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
@pytest.mark.parametrize("name", list(FAULTS))
def test_damaged_artifact(name, damage, request, tmp_path, capsys, monkeypatch):
    fault = FAULTS[name]
    source = request.getfixturevalue(fault.run)
    shutil.copytree(source, tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")
    target = Path(fault.path)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] if damage == "truncated"
                       else b"\x00garbage\xff" * 7)
    code, err = _main(*fault.argv, capsys=capsys)
    assert "Traceback" not in err, err
    assert code == fault.exit, err
    if fault.exit == 2:
        line = _one_error_line(err)
        assert f"{fault.path}: " in line and fault.message in line, line
    else:  # the cache entry is rebuilt with a warning, and the result is the clean run's
        assert "recomputing" in err, err
        assert json.loads(Path("w/metrics.json").read_text())["f1"] == \
            json.loads((source / "w" / "metrics.json").read_text())["f1"]
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
    """`ablate` and `report` refuse features, scores and a model that train-ranker made from
    other candidates than the directory now holds; `submit` applies that model all the same."""
    work = _copy(trained, tmp_path)
    _rewrite(work / "candidates.json", candidates_fingerprint="0" * 64)
    for argv, name in ((["ablate", "--work", str(work), "--folds", "3"], "features.parquet"),
                       (["report", "--work", str(work)], "metrics.json")):
        code, err = _main(*argv, capsys=capsys)
        line = _one_error_line(err)
        assert code == 2 and name in line and TRAIN in line, line
    shutil.copy(trained / "w" / "candidates.json", work / "candidates.json")
    _rewrite(work / "model" / "schema.json", candidates_fingerprint="0" * 64)
    code, err = _main("report", "--work", str(work), capsys=capsys)
    line = _one_error_line(err)
    assert code == 2 and "schema.json" in line and TRAIN in line, line
    code, err = _main("submit", "--postings", str(trained / "other.csv"), "--model", str(work),
                      "--out", str(tmp_path / "sub.csv"), capsys=capsys)
    assert code == 0, err


def test_work_directory_from_before_fingerprints_warns_once(trained, tmp_path, capsys, caplog):
    """Reports without fingerprints are read, with one warning that names the command whose
    rerun records them."""
    from pipeline import Candidates
    from report.run import load_run

    work = _copy(trained, tmp_path)
    for name in ("metrics.json", "features.json", "model/schema.json"):
        _rewrite(work / name, candidates_fingerprint=None)
    with caplog.at_level(logging.WARNING):
        load_run(work)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "metrics.json, features.json, model/schema.json" in \
        warnings[0] and "provenance" in warnings[0] and TRAIN in warnings[0], warnings
    caplog.clear()
    _rewrite(work / "candidates.json", candidates_fingerprint=None, postings_fingerprint=None)
    with caplog.at_level(logging.WARNING):
        Candidates.load(work)  # what train-ranker reads
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "candidates.json" in warnings[0] and \
        CANDIDATES in warnings[0], warnings
    code, err = _main("report", "--work", str(work), capsys=capsys)
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert code == 0 and len(warnings) == 1, err
    assert "candidates.json, metrics.json" in warnings[0] and \
        "`python cli.py candidates` and `python cli.py train-ranker`" in warnings[0], warnings


def _rewrite(path: Path, **fields) -> None:
    """Set (None: remove) top-level fields of a JSON report."""
    report = json.loads(path.read_text())
    for key, value in fields.items():
        if value is None:
            del report[key]
        else:
            report[key] = value
    path.write_text(json.dumps(report))


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


def test_too_few_label_groups_are_refused_before_training(trained, tmp_path, capsys):
    """Whole label groups are dealt into the folds and into the 10 folds of the rankers'
    early-stopping split: `train-ranker` and `ablate` (and `Matcher.fit_candidates`) refuse
    fewer groups than that, naming the postings, before any feature is built."""
    from common.errors import InputError
    from pipeline import Candidates, Matcher

    generate_catalog(n_products=6, seed=3).write_csv(tmp_path / "few.csv")
    few = tmp_path / "few"
    code, err = _main("candidates", "--postings", str(tmp_path / "few.csv"), "--work", str(few),
                      "--k", "5", capsys=capsys)
    assert code == 0, err
    code, err = _main("train-ranker", "--work", str(few), "--folds", "3", capsys=capsys)
    line = _one_error_line(err)
    assert code == 2 and "few.csv, column 'label_group': 6 label groups are too few" in line \
        and "at least 10; label more products" in line, line
    assert not (few / "features.parquet").exists() and not (few / "model").exists()
    candidates = Candidates.load(few)
    with pytest.raises(InputError, match="6 label groups are too few"):
        Matcher(folds=3).set_params(**candidates.search_params()).fit_candidates(candidates)
    work = _copy(trained, tmp_path)  # 40 groups: more than the early-stopping split needs
    for command in ("train-ranker", "ablate"):
        code, err = _main(command, "--work", str(work), "--folds", "41", capsys=capsys)
        line = _one_error_line(err)
        assert code == 2 and "train.csv, column 'label_group': 40 label groups" in line \
            and "at least 41; use --folds 40 or fewer" in line, line


def test_xgboost_model_of_other_features_is_refused(image_run, tmp_path, capsys, monkeypatch):
    """An XGBoost model file stores no feature names, only their count: one from a run with
    other feature groups is refused against schema.json when the model is loaded."""
    from common.errors import InputError
    from pipeline import Matcher

    shutil.copytree(image_run, tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")
    shutil.copytree("w", "other")
    code, err = _main("train-ranker", "--work", "other", "--folds", "3", "--backend", "xgboost",
                      "--no-stack", "--filter-threshold", "0", "--groups", "similarity",
                      capsys=capsys)
    assert code == 0, err
    counts = [len(json.loads(Path(f"{w}/model/schema.json").read_text())["features"])
              for w in ("w", "other")]
    assert counts[0] > counts[1], counts
    shutil.copy("other/model/ranker.xgb.json", "w/model/ranker.xgb.json")
    code, err = _main(*SUBMIT_IMAGES, capsys=capsys)
    line = _one_error_line(err)
    assert code == 2 and f"w/model/ranker.xgb.json: the model file has {counts[1]} features, " \
        f"schema.json {counts[0]}" in line and TRAIN in line, line
    assert not Path("sub.csv").exists()
    with pytest.raises(InputError, match="ranker.xgb.json: the model file has"):
        Matcher.load("w")


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


def test_damaged_arcface_head_is_an_input_error(image_run, tmp_path):
    """`load_loss` (Python API) refuses a damaged head or record of a train-embedder checkpoint
    by name."""
    from common.errors import InputError
    from embedders.arcface import load_loss

    folder = shutil.copytree(image_run / "image" / "final", tmp_path / "final")
    load_loss(folder)
    for name in ("head.safetensors", "arcface.json"):
        intact = (folder / name).read_bytes()
        (folder / name).write_bytes(intact[: len(intact) // 2])
        with pytest.raises(InputError, match=f"{name}: truncated or damaged.*train-embedder"):
            load_loss(folder)
        (folder / name).write_bytes(intact)


def test_every_readme_case_is_tested():
    """README's "When input is wrong" lists the fault cases here under its work directories."""
    tested = set(FAULTS) | {"mixed-work-directory", "features-of-other-candidates",
                            "written-before-fingerprints", "second-writer", "stale-lock",
                            "write-over-file-size-limit", "too-few-label-groups",
                            "xgboost-model-of-other-features"}
    listed = readme_cases("### Work directories and checkpoints")
    assert listed == tested, (sorted(tested - listed), sorted(listed - tested))
