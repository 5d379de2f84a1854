"""The commands end to end on generated catalogs: candidates → train-ranker → submit → evaluate."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from datasets import generate_catalog
from features import SCORE_GRAPH_FEATURES
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    generate_catalog(n_products=150, seed=5).write_csv(root / "train.csv")
    done = run_cli("candidates", "--postings", str(root / "train.csv"), "--work", str(root / "w"),
                   "--k", "20")
    assert done.returncode == 0, done.stderr
    done = run_cli("train-ranker", "--work", str(root / "w"), "--folds", "3")
    assert done.returncode == 0, done.stderr
    return root


def test_reports_have_the_contracted_fields(trained):
    report = json.loads((trained / "w" / "candidates.json").read_text())
    assert {"pairs", "pairs_per_posting", "recall", "seconds"} <= set(report)
    assert 0 < report["recall"] <= 1
    metrics = json.loads((trained / "w" / "metrics.json").read_text())
    assert {"f1", "precision", "recall", "threshold", "seconds", "postprocess_steps"} <= set(metrics)
    assert metrics["f1"] > 0.6
    # the entity-resolution figures of the same match sets: B-cubed averages the per-posting
    # precision and recall
    for name in ("pairwise", "bcubed"):
        assert set(metrics[name]) == {"precision", "recall", "f1"}
        assert all(0 <= value <= 1 for value in metrics[name].values())
    assert metrics["bcubed"]["precision"] == pytest.approx(metrics["precision"], abs=1e-5)
    assert metrics["bcubed"]["recall"] == pytest.approx(metrics["recall"], abs=1e-5)
    schema = json.loads((trained / "w" / "model" / "schema.json").read_text())
    assert {f["group"] for f in schema["features"]} >= {"similarity", "phash"}
    assert (trained / "w" / "model" / "ranker.lgb.txt").exists()
    # the second stage (default): nested out-of-fold scores, its own model after the first's
    assert {"f1", "precision", "recall", "threshold"} <= set(metrics["first_stage"])
    assert len(metrics["second_stage"]["best_iterations"]) == 3
    second = json.loads((trained / "w" / "model" / "stack" / "schema.json").read_text())
    assert [f["name"] for f in second["features"]] == [f["name"] for f in schema["features"]] + \
        list(SCORE_GRAPH_FEATURES)
    assert schema["stack"] == "stack"


def test_submit_and_evaluate(trained, tmp_path):
    test = generate_catalog(n_products=40, seed=6, id_prefix="t")
    test.write_csv(tmp_path / "test.csv")
    done = run_cli("submit", "--postings", str(tmp_path / "test.csv"), "--model",
                   str(trained / "w" / "model"), "--out", str(tmp_path / "sub.csv"))
    assert done.returncode == 0, done.stderr
    sub = pl.read_csv(tmp_path / "sub.csv")
    assert sub.columns == ["posting_id", "matches"]
    assert sub["posting_id"].to_list() == test["posting_id"].to_list()
    first = sub["matches"].str.split(" ").list.first()
    assert (first == sub["posting_id"]).all()
    assert (sub["matches"].str.split(" ").list.len() <= 50).all()
    done = run_cli("evaluate", "--postings", str(tmp_path / "test.csv"),
                   "--submission", str(tmp_path / "sub.csv"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["f1"] > 0.7


def test_submit_measures_how_far_the_scores_are_from_training(trained, tmp_path):
    # the same generator and size: near the training scores (a smaller catalog's lists reach
    # further, 0.26-0.30 for 60 products against the model's 150); unrelated random titles
    # (nothing matches): far from them, with a warning
    schema = json.loads((trained / "w" / "model" / "schema.json").read_text())
    assert len(schema["score_quantiles"]) == 19
    like = generate_catalog(n_products=150, seed=9, id_prefix="s")
    rng = np.random.default_rng(9)
    # enough postings for the shift to count (pipeline.transfer.MIN_SHIFT_PAIRS scored pairs)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 8)) for _ in range(3000)]
    alone = pl.DataFrame({"posting_id": [f"u{k}" for k in range(1500)],
                          "title": [f"{words[2 * k]} {words[2 * k + 1]}" for k in range(1500)],
                          "image_phash": [f"{int(h):016x}" for h in
                                          rng.integers(0, 2**63, 1500, dtype=np.int64)]})
    shifts = {}
    for name, frame in (("like", like), ("alone", alone)):
        frame.write_csv(tmp_path / f"{name}.csv")
        done = run_cli("submit", "--postings", str(tmp_path / f"{name}.csv"), "--model",
                       str(trained / "w" / "model"), "--out", str(tmp_path / f"{name}.out.csv"),
                       "--work", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        report = json.loads((tmp_path / name / "submit.json").read_text())
        shifts[name] = (report["score_shift"],
                        "far from those of the catalog the model was trained on" in done.stderr,
                        report["postprocess"])
    assert shifts["like"][0] <= 0.25 and shifts["like"][1:] == (False, "saved"), shifts
    assert shifts["alone"][0] > 0.25 and shifts["alone"][1:] == (True, "conservative"), shifts


def test_submit_adapts_when_a_view_is_missing_that_training_had(trained, tmp_path):
    # trained where every posting has a photo hash; matched where none (or a few) lack one
    schema = json.loads((trained / "w" / "model" / "schema.json").read_text())
    assert schema["coverage"] == {"tfidf": 1.0, "tfidf_char": 1.0, "phash": 1.0}
    full = generate_catalog(n_products=60, seed=9, id_prefix="c")
    hashes = full["image_phash"].to_list()
    # two postings of one product carry a code no other posting does (pipeline.transfer's sole
    # code holders: kept by the conservative matching whatever their score)
    coded = [f"{t} QX5500" if k < 2 else t for k, t in enumerate(full["title"].to_list())]
    catalogs = {"no_photos": full.drop("image_phash").with_columns(pl.Series("title", coded)),
                "few_missing": full.with_columns(pl.Series(
                    "image_phash", [None if k % 10 == 0 else h for k, h in enumerate(hashes)]))}
    seen = {}
    for name, frame in catalogs.items():
        frame.write_csv(tmp_path / f"{name}.csv")
        done = run_cli("submit", "--postings", str(tmp_path / f"{name}.csv"), "--model",
                       str(trained / "w" / "model"), "--out", str(tmp_path / f"{name}.out.csv"),
                       "--work", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        report = json.loads((tmp_path / name / "submit.json").read_text())
        seen[name] = (report["coverage"]["phash"], report["coverage_gaps"],
                      "against 100% of the training catalog's" in done.stderr,
                      report["postprocess"], report["score_shift"] > 0.25,
                      report["sole_code_pairs"])
    assert seen["no_photos"][:4] == (0.0, {"phash": {"training": 1.0, "catalog": 0.0}}, True,
                                     "conservative")
    assert seen["no_photos"][5] == 1
    matches = pl.read_csv(tmp_path / "no_photos.out.csv")["matches"][0].split(" ")
    assert full["posting_id"][1] in matches
    # a few missing photos are no other kind of catalog (its scores may still have moved)
    assert seen["few_missing"][0] < 0.95 and seen["few_missing"][1:3] == ({}, False), seen
    assert seen["few_missing"][3] == ("conservative" if seen["few_missing"][4] else "saved")
    # --adapt never: warned, but matched with the saved post-processing
    done = run_cli("submit", "--postings", str(tmp_path / "no_photos.csv"), "--model",
                   str(trained / "w" / "model"), "--out", str(tmp_path / "never.out.csv"),
                   "--work", str(tmp_path / "never"), "--adapt", "never")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "never" / "submit.json").read_text())
    assert report["postprocess"] == "saved" and "--adapt never, keeps it" not in done.stderr
    assert report["sole_code_pairs"] == 0
    assert "may over- or under-match here" in done.stderr


def test_submit_is_reproducible(trained, tmp_path):
    generate_catalog(n_products=30, seed=8, id_prefix="r").write_csv(tmp_path / "t.csv")
    outs = []
    for name in ("a.csv", "b.csv"):
        done = run_cli("submit", "--postings", str(tmp_path / "t.csv"), "--model",
                       str(trained / "w"), "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize("edit_model_file", [False, True])
def test_model_with_unknown_feature_is_refused(trained, tmp_path, edit_model_file):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained / "w" / "model", model)
    schema = json.loads((model / "schema.json").read_text())
    original = schema["features"][0]["name"]
    schema["features"][0]["name"] = "no_such_feature"
    (model / "schema.json").write_text(json.dumps(schema))
    if edit_model_file:  # both files agree, but the toolkit builds no such feature
        text = (model / "ranker.lgb.txt").read_text()
        (model / "ranker.lgb.txt").write_text(text.replace(f"feature_names={original} ",
                                                           "feature_names=no_such_feature ", 1))
    generate_catalog(n_products=10, seed=9).write_csv(tmp_path / "t.csv")
    done = run_cli("submit", "--postings", str(tmp_path / "t.csv"), "--model", str(model),
                   "--out", str(tmp_path / "sub.csv"))
    assert done.returncode == 2
    assert "no_such_feature" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "sub.csv").exists()


def _edit_schema(change):
    def edit(model):
        schema = json.loads((model / "schema.json").read_text())
        change(schema)
        (model / "schema.json").write_text(json.dumps(schema))
    return edit


def _write(name, content):
    return lambda model: (model / name).write_text(content)


@pytest.mark.parametrize("damage, message", [
    (_edit_schema(lambda s: s.update(schema_version=2)), "schema_version 2 is not 1"),
    (_edit_schema(lambda s: s.update(backend="catboost")), "unknown backend or model file"),
    (_edit_schema(lambda s: s.update(features={"a": 1})), "'features' is not a list"),
    (_edit_schema(lambda s: s["features"].append(dict(s["features"][0]))),
     "names a feature more than once"),
    (_edit_schema(lambda s: s.pop("k")), "'k' is not a positive integer"),
    (_edit_schema(lambda s: s["postprocess"]["steps"][0].update(threshold="high")),
     "unreadable 'postprocess' parameters"),
    (_edit_schema(lambda s: s["embedders"][0].update(name="no_such_embedder")),
     "unknown embedder 'no_such_embedder'"),
    (_edit_schema(lambda s: s["embedders"][0]["config"].update(no_such_parameter=1)),
     "cannot be built from its config"),
    (_write("schema.json", '{"schema_version": 1, '), "not valid JSON"),
    (_write("ranker.lgb.txt", "tree\nnot a model\n"), "model file cannot be read"),
    (_edit_schema(lambda s: s.update(filter="elsewhere")), "'filter' names no folder"),
    (_write("filter/ranker.lgb.txt", "tree\nnot a model\n"), "model file cannot be read"),
    (lambda model: _edit_schema(lambda s: s["features"][0].update(name="no_such_feature"))(
        model / "filter"), "no_such_feature"),
    (_edit_schema(lambda s: s.update(stack="elsewhere")), "'stack' names no folder"),
    (_write("stack/ranker.lgb.txt", "tree\nnot a model\n"), "model file cannot be read"),
    (lambda model: [(model / "stack" / name).write_text((model / "stack" / name).read_text()
                                                        .replace("stack_two_hop_j", "stack_other"))
                    for name in ("schema.json", "ranker.lgb.txt")],
     "second stage only: ['stack_other']; expected only: ['stack_two_hop_j']"),
], ids=["version", "backend", "features-type", "feature-twice", "k", "threshold",
        "unknown-embedder", "embedder-config", "schema-not-json", "model-file-garbage",
        "filter-folder", "filter-model-garbage", "filter-feature", "stack-folder",
        "stack-model-garbage", "stack-feature"])
def test_damaged_model_is_refused(trained, tmp_path, capsys, damage, message):
    """Loading checks schema version, backend, feature list and every setting submit replays.
    (In-process: an exception escaping main fails the test as a traceback would.)"""
    import shutil

    import cli

    model = tmp_path / "model"
    shutil.copytree(trained / "w" / "model", model)
    damage(model)
    generate_catalog(n_products=5, seed=9).write_csv(tmp_path / "t.csv")
    capsys.readouterr()
    returncode = cli.main(["submit", "--postings", str(tmp_path / "t.csv"), "--model", str(model),
                           "--out", str(tmp_path / "sub.csv")])
    err = capsys.readouterr().err
    assert returncode == 2, err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "sub.csv").exists()


def test_title_only_catalog_end_to_end(tmp_path):
    generate_catalog(n_products=60, seed=11).drop("image_phash").write_csv(tmp_path / "p.csv")
    done = run_cli("candidates", "--postings", str(tmp_path / "p.csv"), "--work",
                   str(tmp_path / "w"), "--embedders", "tfidf,tfidf_char", "--k", "10")
    assert done.returncode == 0, done.stderr
    done = run_cli("train-ranker", "--work", str(tmp_path / "w"), "--folds", "3")
    assert done.returncode == 0, done.stderr
    done = run_cli("submit", "--postings", str(tmp_path / "p.csv"), "--model",
                   str(tmp_path / "w"), "--out", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    assert pl.read_csv(tmp_path / "s.csv").height == 60 * 0 + pl.read_csv(tmp_path / "p.csv").height


def test_one_posting_catalog(trained, tmp_path):
    (tmp_path / "one.csv").write_text("posting_id,title,image_phash\nonly,red shoe,0123456789abcdef\n")
    done = run_cli("submit", "--postings", str(tmp_path / "one.csv"), "--model",
                   str(trained / "w"), "--out", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s.csv").read_text() == "posting_id,matches\nonly,only\n"


def test_ablate_writes_the_table(trained):
    groups = {"similarity", "phash"}
    done = run_cli("ablate", "--work", str(trained / "w"), "--folds", "3",
                   "--negative-rate", "0.5", "--groups", ",".join(sorted(groups)))
    assert done.returncode == 0, done.stderr
    rows = json.loads((trained / "w" / "ablation.json").read_text())["rows"]
    assert {r["group"] for r in rows if r["variant"] == "without"} == groups
    assert {r["group"] for r in rows if r["variant"] == "only"} == groups
    assert rows[0]["variant"] == "all" and rows[0]["delta_f1"] == 0
    assert (trained / "w" / "ablation.md").read_text().count("\n") == len(rows) + 2
    assert (trained / "w" / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (trained / "w" / "model" / "importance.png").exists()


def test_filter_and_second_stage_keep_fewer_pairs_and_can_be_turned_off(trained, tmp_path):
    import shutil

    metrics = json.loads((trained / "w" / "metrics.json").read_text())
    candidates = json.loads((trained / "w" / "candidates.json").read_text())
    assert metrics["filter"]["kept_pairs"] == metrics["pairs"] < candidates["pairs"]
    assert metrics["filtered_recall"] <= candidates["recall"]
    assert (trained / "w" / "model" / "filter" / "schema.json").exists()
    work = tmp_path / "w"
    shutil.copytree(trained / "w", work)
    done = run_cli("train-ranker", "--work", str(work), "--folds", "3", "--filter-threshold", "0",
                   "--no-stack")
    assert done.returncode == 0, done.stderr
    unfiltered = json.loads((work / "metrics.json").read_text())
    assert unfiltered["filter"] is None and unfiltered["pairs"] == candidates["pairs"]
    assert unfiltered["second_stage"] is None
    assert unfiltered["postprocess_steps"][0]["f1"] == unfiltered["first_stage"]["f1"]
    assert not (work / "model" / "filter").exists() and not (work / "model" / "stack").exists()
    schema = json.loads((work / "model" / "schema.json").read_text())
    assert schema["filter"] is None and schema["stack"] is None
    done = run_cli("submit", "--postings", str(trained / "train.csv"), "--model", str(work),
                   "--work", str(tmp_path / "s"), "--out", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    submitted = json.loads((tmp_path / "s" / "submit.json").read_text())
    assert submitted["pairs"] == submitted["candidate_pairs"]


def test_xgboost_backend_trains_and_submits(trained, tmp_path):
    import shutil

    work = tmp_path / "w"
    shutil.copytree(trained / "w", work)
    done = run_cli("train-ranker", "--work", str(work), "--folds", "3", "--backend", "xgboost")
    assert done.returncode == 0, done.stderr
    assert (work / "model" / "ranker.xgb.json").exists()
    metrics = json.loads((work / "metrics.json").read_text())
    lightgbm = json.loads((trained / "w" / "metrics.json").read_text())
    assert abs(metrics["f1"] - lightgbm["f1"]) < 0.03
    done = run_cli("submit", "--postings", str(trained / "train.csv"), "--model", str(work),
                   "--out", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr


def test_demo_runs_every_command_with_the_cli_defaults(tmp_path):
    done = run_cli("demo", "--work", str(tmp_path / "demo"), "--products", "40")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["f1"] > 0.8
    assert (tmp_path / "demo" / "work" / "model" / "stack" / "schema.json").exists()
