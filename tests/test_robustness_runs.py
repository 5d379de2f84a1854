"""Interrupted runs resume from what was finished; the same inputs give the same bytes; models and
caches are files that loading can never execute (no pickle)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from datasets import generate_catalog
from tests.conftest import ROOT, run_cli

PACKAGES = ("common", "datasets", "embedders", "candidates", "features", "ranker", "postprocess",
            "pipeline", "report")


def _candidates_args(postings: Path, work: Path, *extra: str) -> list[str]:
    return ["candidates", "--postings", str(postings), "--work", str(work), *extra]


def _same_files(a: Path, b: Path, names: list[str]) -> list[str]:
    """Relative paths (under both roots) whose bytes differ or that one side lacks."""
    return [n for n in names if not (a / n).is_file() or not (b / n).is_file()
            or (a / n).read_bytes() != (b / n).read_bytes()]


def _outputs(work: Path) -> list[str]:
    return sorted(str(p.relative_to(work)) for p in work.rglob("*")
                  if p.is_file() and p.suffix in (".parquet", ".npy", ".npz"))


def test_interrupted_candidates_resume_from_the_cache(tmp_path, monkeypatch, capsys):
    """Stopped while the second embedder runs, `candidates` keeps the first one's finished cache;
    the next run reuses it (does not recompute it) and writes the same bytes as a clean run."""
    import cli
    from embedders.tfidf import TfidfEmbedder

    generate_catalog(n_products=60, seed=3).write_csv(tmp_path / "p.csv")
    work, clean = tmp_path / "w", tmp_path / "clean"
    embed = TfidfEmbedder.embed

    def interrupted_in_second(self, postings, images_dir=None):
        if self.name == "tfidf_char":
            raise KeyboardInterrupt  # what Ctrl-C or `kill` (see cli._interrupt) raises
        return embed(self, postings, images_dir)

    monkeypatch.setattr(TfidfEmbedder, "embed", interrupted_in_second)
    assert cli.main(_candidates_args(tmp_path / "p.csv", work, "--k", "10")) == 130
    assert "interrupted" in capsys.readouterr().err
    cache = work / "embeddings"
    assert (cache / "tfidf" / "manifest.json").is_file()
    assert not (cache / "tfidf_char" / "manifest.json").exists()
    assert not (work / "candidates.parquet").exists() and not list(work.rglob(".*.tmp"))
    # A process killed outright (SIGKILL) cannot clean up; the next run deletes what it left.
    (cache / "tfidf_char").mkdir(parents=True, exist_ok=True)
    (cache / "tfidf_char" / ".vectors.npy.killed.tmp").write_bytes(b"half written")
    finished = (cache / "tfidf" / "vectors.npz").stat().st_mtime_ns

    def recompute_only_unfinished(self, postings, images_dir=None):
        assert self.name != "tfidf", "tfidf was recomputed although its cache is complete"
        return embed(self, postings, images_dir)

    monkeypatch.setattr(TfidfEmbedder, "embed", recompute_only_unfinished)
    assert cli.main(_candidates_args(tmp_path / "p.csv", work, "--k", "10")) == 0
    assert (cache / "tfidf" / "vectors.npz").stat().st_mtime_ns == finished
    assert not list(work.rglob(".*.tmp"))

    monkeypatch.setattr(TfidfEmbedder, "embed", embed)
    assert cli.main(_candidates_args(tmp_path / "p.csv", clean, "--k", "10")) == 0
    assert _outputs(work) == _outputs(clean)
    assert _same_files(work, clean, _outputs(clean)) == []


def test_killed_candidates_process_resumes(tmp_path):
    """A real `kill` (SIGTERM) of the process during embedding: exit 130, no partial file; the
    rerun reuses the finished embedder's cache and matches an uninterrupted run."""
    import cli

    generate_catalog(n_products=600, seed=4).write_csv(tmp_path / "p.csv")
    work, clean = tmp_path / "w", tmp_path / "clean"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, str(ROOT / "cli.py"),
                                *_candidates_args(tmp_path / "p.csv", work)],
                               stderr=subprocess.PIPE, text=True, env=env)
    manifest = work / "embeddings" / "tfidf" / "manifest.json"
    deadline = time.monotonic() + 300
    while not manifest.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, f"not interrupted during embedding (grow the catalog?)\n{err}"
    assert "Traceback" not in err and "interrupted" in err
    assert not (work / "candidates.parquet").exists() and not list(work.rglob(".*.tmp"))
    finished = manifest.stat().st_mtime_ns

    done = run_cli(*_candidates_args(tmp_path / "p.csv", work))
    assert done.returncode == 0, done.stderr
    assert manifest.stat().st_mtime_ns == finished
    assert cli.main(_candidates_args(tmp_path / "p.csv", clean)) == 0
    assert _same_files(work, clean, _outputs(clean)) == []


@pytest.fixture(scope="module")
def two_pipeline_runs(tmp_path_factory) -> tuple[Path, Path]:
    """The whole pipeline twice, in separate processes (so that anything depending on hash
    randomisation or process state would show), on the same generated catalogs."""
    root = tmp_path_factory.mktemp("twice")
    generate_catalog(n_products=50, seed=21).write_csv(root / "train.csv")
    generate_catalog(n_products=20, seed=22, id_prefix="t").write_csv(root / "test.csv")
    runs = []
    for name in ("a", "b"):
        work = root / name
        for args in (_candidates_args(root / "train.csv", work),
                     ["train-ranker", "--work", str(work), "--folds", "3"],
                     ["submit", "--postings", str(root / "test.csv"), "--model", str(work),
                      "--out", str(work / "submission.csv")]):
            done = run_cli(*args)
            assert done.returncode == 0, done.stderr
        runs.append(work)
    return runs[0], runs[1]


def test_whole_pipeline_twice_gives_identical_bytes(two_pipeline_runs):
    a, b = two_pipeline_runs
    names = _outputs(a) + ["submission.csv", "model/ranker.lgb.txt", "model/schema.json",
                           "model/importance.csv"]
    assert {"features.parquet", "oof_scores.parquet", "candidates.parquet"} <= set(names)
    assert _same_files(a, b, names) == []

    def without_timings(path: Path):
        def strip(value):  # wall-clock "seconds" entries, at any depth, are the only variable part
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items() if k != "seconds"}
            if isinstance(value, list):
                return [strip(v) for v in value]
            return value

        report = json.loads(path.read_text())
        assert "seconds" in report
        return strip(report)

    for report in ("metrics.json", "features.json"):
        assert without_timings(a / report) == without_timings(b / report), report


def test_saved_files_hold_no_pickle(two_pipeline_runs):
    """Models are LightGBM text + JSON; arrays are plain .npy/.npz that load with pickling off."""
    work, _ = two_pipeline_runs
    names = {str(p.relative_to(work / "model")) for p in (work / "model").rglob("*")
             if p.is_file()}
    assert {"ranker.lgb.txt", "schema.json", "importance.csv",
            "filter/ranker.lgb.txt", "filter/schema.json"} <= names
    assert {Path(n).suffix for n in names} <= {".txt", ".json", ".csv", ".png"}, names
    json.loads((work / "model" / "schema.json").read_text())
    for path in work.rglob("*.np[yz]"):
        loaded = np.load(path, allow_pickle=False)
        arrays = [loaded[k] for k in loaded.files] if path.suffix == ".npz" else [loaded]
        assert all(a.dtype != object for a in arrays), path


def test_no_pickle_in_the_source():
    """No module may read or write pickles (pickle, joblib, dill, np.load with pickling,
    torch.load without weights_only=True)."""
    forbidden = re.compile(r"\bimport (c?pickle|joblib|dill|cloudpickle)\b|\bfrom (c?pickle|joblib"
                           r"|dill|cloudpickle) import\b|allow_pickle\s*=\s*True|\.to_pickle\(|"
                           r"read_pickle\(")
    torch_load = re.compile(r"torch\.load\(([^()]|\([^()]*\))*\)", re.S)
    sources = [ROOT / "cli.py"] + [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    offences = []
    for path in sources:
        text = path.read_text()
        offences += [f"{path.name}: {m.group(0)}" for m in forbidden.finditer(text)]
        offences += [f"{path.name}: {m.group(0)}" for m in torch_load.finditer(text)
                     if "weights_only=True" not in m.group(0)]
    assert offences == []
