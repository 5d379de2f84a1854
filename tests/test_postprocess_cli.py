"""Post-processing and neighbour blending through the commands: what train-ranker records and
saves, and that submit repeats it."""
from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from datasets import generate_catalog
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def blended_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("postprocess")
    generate_catalog(n_products=80, seed=21).write_csv(root / "train.csv")
    done = run_cli("candidates", "--postings", str(root / "train.csv"), "--work", str(root / "w"),
                   "--k", "10", "--blend-depth", "2", "--blend-iterations", "2")
    assert done.returncode == 0, done.stderr
    done = run_cli("train-ranker", "--work", str(root / "w"), "--folds", "3",
                   "--postprocess", "min2,threshold,merge")
    assert done.returncode == 0, done.stderr
    return root


def test_train_ranker_records_each_chosen_step_in_order(blended_run):
    metrics = json.loads((blended_run / "w" / "metrics.json").read_text())
    steps = metrics["postprocess_steps"]
    assert [s["step"] for s in steps] == ["threshold", "min2", "merge", "cap"]
    assert all({"f1", "precision", "recall"} <= set(s) for s in steps)
    assert metrics["f1"] == steps[-1]["f1"] >= steps[0]["f1"]
    schema = json.loads((blended_run / "w" / "model" / "schema.json").read_text())
    assert [s["step"] for s in schema["postprocess"]["steps"]] == ["threshold", "min2", "merge"]
    assert schema["blend"] == {"depth": 2, "iterations": 2, "power": 1.0}
    report = json.loads((blended_run / "w" / "candidates.json").read_text())
    assert report["blend"] == schema["blend"] and "blend" in report["seconds"]


def test_submit_repeats_blending_and_steps_reproducibly(blended_run, tmp_path):
    generate_catalog(n_products=30, seed=22, id_prefix="q").write_csv(tmp_path / "t.csv")
    outs = []
    for name in ("a", "b"):
        done = run_cli("submit", "--postings", str(tmp_path / "t.csv"), "--model",
                       str(blended_run / "w"), "--out", str(tmp_path / f"{name}.csv"),
                       "--work", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        outs.append((tmp_path / f"{name}.csv").read_bytes())
        timings = json.loads((tmp_path / name / "submit.json").read_text())
        assert {"blend", "search", "features", "score", "postprocess"} <= set(timings["seconds"])
    assert outs[0] == outs[1]
    done = run_cli("evaluate", "--postings", str(tmp_path / "t.csv"),
                   "--submission", str(tmp_path / "a.csv"))
    assert json.loads(done.stdout)["f1"] > 0.7


def test_unknown_step_and_damaged_parameters_are_clear_errors(blended_run, tmp_path):
    done = run_cli("train-ranker", "--work", str(blended_run / "w"), "--postprocess", "magic")
    assert done.returncode == 2
    assert "magic" in done.stderr and "Traceback" not in done.stderr
    model = tmp_path / "model"
    shutil.copytree(blended_run / "w" / "model", model)
    schema = json.loads((model / "schema.json").read_text())
    schema["postprocess"]["steps"][1]["step"] = "nonsense"
    (model / "schema.json").write_text(json.dumps(schema))
    pl.DataFrame({"posting_id": ["a"], "title": ["x"]}).write_csv(tmp_path / "p.csv")
    done = run_cli("submit", "--postings", str(tmp_path / "p.csv"), "--model", str(model),
                   "--out", str(tmp_path / "s.csv"))
    assert done.returncode == 2
    assert "postprocess" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s.csv").exists()
