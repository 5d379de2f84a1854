"""The Python API: the README's example, run on a Shopee train subset, writes byte for byte the
matches and model files that `candidates` + `train-ranker` + `submit` write with the same
settings; the estimator follows the scikit-learn conventions."""
from __future__ import annotations

import json

import re
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest

from candidates import BRIDGE_IN, BRIDGE_LIST_DEPTH, BRIDGE_OUT, bridge_spec
from datasets import generate_catalog
from pipeline import Candidates, Matcher, ParameterError, train_work_dir
from pipeline.inference import FeatureBlocks
from tests.conftest import ROOT, run_cli


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
def test_readme_example_equals_the_commands(shopee_train, tmp_path, monkeypatch):
    # 1,664 train postings (whole groups, in file order) and 340 others to match.
    groups = shopee_train["label_group"].unique(maintain_order=True)
    train = shopee_train.filter(pl.col("label_group").is_in(groups[:300].implode()))
    test = shopee_train.filter(pl.col("label_group").is_in(groups[300:375].implode())) \
        .drop("label_group")
    train.write_csv(tmp_path / "train.csv")
    test.write_csv(tmp_path / "test.csv")
    code = readme_example()
    assert "../shared/data/shopee/train.csv" in code and "../shared/data/shopee/test.csv" in code
    code = code.replace("../shared/data/shopee/", f"{tmp_path}/")
    api = tmp_path / "api"
    api.mkdir()
    monkeypatch.chdir(api)
    exec(compile(code, "README.md", "exec"), {})

    work = tmp_path / "cli"
    for argv in (["candidates", "--postings", str(tmp_path / "train.csv"), "--work", str(work)],
                 ["train-ranker", "--work", str(work)],
                 ["submit", "--postings", str(tmp_path / "test.csv"), "--model",
                  str(work / "model"), "--out", str(tmp_path / "cli.csv")]):
        done = run_cli(*argv)
        assert done.returncode == 0, done.stderr
    assert (api / "submission.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
    api_model, cli_model = _files(api / "model"), _files(work / "model")
    assert {"schema.json", "ranker.lgb.txt", "filter/schema.json", "stack/schema.json"} \
        <= set(cli_model)
    assert api_model.keys() == cli_model.keys()
    assert [name for name in cli_model if api_model[name] != cli_model[name]] == []


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    train = generate_catalog(n_products=80, seed=3)
    matcher = Matcher(k=15, folds=3, cache_dir=root / "work").fit(train.to_pandas())
    return matcher, root


def test_fitted_state_and_parameters(fitted):
    matcher, root = fitted
    assert matcher.get_params()["k"] == 15 and matcher.k == 15
    assert matcher.embedders == "tfidf,tfidf_char,phash"  # fitting never rewrites a parameter
    assert {"f1", "precision", "recall", "threshold", "first_stage"} <= set(matcher.cv_report_)
    assert set(matcher.oof_scores_.columns) == {"i", "j", "p", "p_first_stage"}
    assert matcher.oof_scores_.height == matcher.cv_report_["pairs"]
    # cache_dir is a work directory: the commands' artifacts are there
    for name in ("candidates.parquet", "candidates.json", "features.parquet", "metrics.json",
                 "oof_scores.parquet"):
        assert (root / "work" / name).is_file(), name
    clone = Matcher(**matcher.get_params())
    assert clone.get_params() == matcher.get_params() and not hasattr(clone, "bundle_")
    assert "k=15" in repr(matcher)


def test_chunked_matching_gives_the_same_pairs_and_spills_to_tmpdir(fitted, tmp_path,
                                                                    monkeypatch):
    matcher, _ = fitted
    test = generate_catalog(n_products=25, seed=4, id_prefix="t")
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setenv("TMPDIR", str(spill))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    seen = []
    add = FeatureBlocks.add

    def spy(self, block):
        add(self, block)
        if isinstance(self.blocks[-1], Path):
            seen.append(self.blocks[-1])

    monkeypatch.setattr(FeatureBlocks, "add", spy)
    unchunked = matcher.set_params(chunk_size=None).match(test)
    assert not seen
    chunked = matcher.set_params(chunk_size=7).match(test)
    matcher.set_params(chunk_size=100_000)
    assert len(seen) > 1 and all(str(path).startswith(str(spill)) for path in seen)
    assert not any(spill.iterdir())  # the spilled blocks are removed
    assert chunked.pairs.equals(unchunked.pairs)
    assert chunked.submission.equals(unchunked.submission)
    with pytest.raises(ParameterError, match="chunk_size"):
        matcher.set_params(chunk_size=0).match(test)
    matcher.set_params(chunk_size=100_000)


def test_predict_pairs_and_save_load_round_trip(fitted, tmp_path):
    matcher, _ = fitted
    test = generate_catalog(n_products=25, seed=4, id_prefix="t")
    submission = matcher.predict(test)
    pairs = matcher.predict_pairs(test)
    assert submission.columns == ["posting_id", "matches"]
    assert pairs.columns == ["i", "j", "p", "kept"] and pairs["kept"].any()
    sizes = submission["matches"].str.count_matches(" ")
    assert int(sizes.sum()) >= int(pairs["kept"].sum())  # the graph merge may add pairs
    matcher.save(tmp_path / "model")
    loaded = Matcher.load(tmp_path / "model")
    assert loaded.get_params() == {**matcher.validate_params(), "cache_dir": None,
                                   "chunk_size": matcher.chunk_size, "adapt": matcher.adapt,
                                   "client": None}
    assert loaded.predict(test).equals(submission)
    # a model saved before the filter's bound existed keeps every pair above its threshold
    for name, key in (("schema.json", "params"), ("filter/schema.json", None)):
        schema = json.loads((tmp_path / "model" / name).read_text())
        (schema[key] if key else schema).pop("filter_max_pairs")
        (tmp_path / "model" / name).write_text(json.dumps(schema))
    older = Matcher.load(tmp_path / "model")
    assert older.filter_max_pairs is None and older.bundle_.pair_filter.max_pairs is None


def test_candidates_from_before_an_embedder_setting_existed_still_train(fitted, tmp_path):
    matcher, root = fitted
    work = tmp_path / "work"
    shutil.copytree(root / "work", work, ignore=shutil.ignore_patterns("model", "*.lock"))
    report = json.loads((work / "candidates.json").read_text())
    for spec in report["embedders"]:
        spec["config"].pop("fold_codes", None)  # a setting tfidf gained later
    (work / "candidates.json").write_text(json.dumps(report))
    metrics = train_work_dir(Matcher(k=15, folds=3, cache_dir=work), work)
    assert metrics["f1"] == matcher.cv_report_["f1"]


def test_parameters_are_checked_in_fit_not_in_init():
    matcher = Matcher(folds=2)  # accepted here: scikit-learn validates in fit
    with pytest.raises(ParameterError, match="folds must be at least 3 with the second stage"):
        matcher.fit(generate_catalog(n_products=20, seed=1))
    with pytest.raises(ValueError, match="negative_rate must be in"):
        Matcher(negative_rate=0).fit(generate_catalog(n_products=20, seed=1))
    with pytest.raises(ParameterError, match="search_depth must be at least k"):
        Matcher(k=20, search_depth=10).fit(generate_catalog(n_products=20, seed=1))
    with pytest.raises(ParameterError, match="allocation must be one of global, per_posting"):
        Matcher(allocation="best").fit(generate_catalog(n_products=20, seed=1))
    with pytest.raises(ValueError, match="unknown parameters"):
        Matcher().set_params(depth=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        Matcher().predict(generate_catalog(n_products=20, seed=1))


def test_commands_and_api_share_the_bundle(fitted, tmp_path):
    """`submit` on a model that Matcher.save wrote."""
    matcher, _ = fitted
    matcher.save(tmp_path / "model")
    test = generate_catalog(n_products=25, seed=4, id_prefix="t")
    test.write_csv(tmp_path / "t.csv")
    done = run_cli("submit", "--postings", str(tmp_path / "t.csv"), "--model",
                   str(tmp_path / "model"), "--out", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    assert pl.read_csv(tmp_path / "s.csv").equals(matcher.predict(test))


def test_candidates_searched_with_other_settings_are_refused(fitted):
    """A model must not record search settings its candidates were not made with."""
    _, root = fitted
    candidates = Candidates.load(root / "work")
    with pytest.raises(ValueError, match="searched with other k than"):
        Matcher(k=10, folds=3).fit_candidates(candidates)
    matcher = Matcher(k=10, folds=3).set_params(**candidates.search_params())
    assert matcher.k == 15 and matcher.embedders == candidates.specs
    assert (matcher.allocation, matcher.search_depth) == ("per_posting", None)
    with pytest.raises(ValueError, match="searched with other allocation than"):
        matcher.set_params(allocation="global").fit_candidates(candidates)


@pytest.mark.slow
def test_global_lists_and_blending_are_saved_with_the_model_and_replayed(tmp_path):
    train = generate_catalog(n_products=80, seed=3)
    test = generate_catalog(n_products=25, seed=4, id_prefix="t")
    matcher = Matcher(k=15, folds=3, allocation="global", blend_depth=2,
                      cache_dir=tmp_path / "work").fit(train)
    report = json.loads((tmp_path / "work" / "candidates.json").read_text())
    assert report["allocation"] == {"depth": 30, "at_least": 5}
    assert report["blend"]["depth"] == 2
    assert report["bridges"] == bridge_spec(BRIDGE_OUT, BRIDGE_IN, BRIDGE_LIST_DEPTH)
    assert report["list_depth"] == 15  # its photos link: each list pairs min(k, 41) entries
    assert Candidates.load(tmp_path / "work").search_params()["search_depth"] == 30
    matcher.save(tmp_path / "model")
    loaded = Matcher.load(tmp_path / "model")
    assert (loaded.allocation, loaded.search_depth, loaded.blend_depth) == ("global", 30, 2)
    assert loaded.bundle_.allocation == {"depth": 30, "at_least": 5}
    assert loaded.bundle_.bridges == report["bridges"] and loaded.bridges == "auto"
    assert loaded.bundle_.list_depth == 15
    assert "bridges" in loaded.bundle_.groups
    assert loaded.predict(test).equals(matcher.predict(test))
    candidate_pairs = loaded.match(test).candidate_pairs
    assert candidate_pairs == matcher.match(test).candidate_pairs
    # the allocation is replayed: keeping every entry of the same lists finds more pairs
    # (per-posting lists 15 deep would also lack the 30-neighbour features)
    loaded.bundle_.allocation = {"depth": 30, "at_least": 30}
    assert loaded.match(test).candidate_pairs > candidate_pairs
    # a model saved before global lists searched each posting's top k, and replays that
    schema = json.loads((tmp_path / "model" / "schema.json").read_text())
    del schema["allocation"], schema["params"]["allocation"], schema["params"]["search_depth"]
    del schema["bridges"], schema["params"]["bridge_out"], schema["params"]["bridge_in"]
    del schema["list_depth"]
    (tmp_path / "model" / "schema.json").write_text(json.dumps(schema))
    older = Matcher.load(tmp_path / "model")
    assert older.allocation == "per_posting" and older.bundle_.allocation is None
    # and, saved before photo bridges, searched without them
    assert (older.bridges, older.bundle_.bridges, older.bundle_.list_depth) == ("off", None, None)


def test_bridges_auto_leave_them_out_beside_a_learned_embedder():
    from pipeline.settings import embedder_specs, spec_params

    plain, learned = embedder_specs("tfidf,phash"), embedder_specs("tfidf,phash,arcface_text")
    spec = bridge_spec(BRIDGE_OUT, BRIDGE_IN, BRIDGE_LIST_DEPTH)
    assert Matcher()._bridges(plain) == spec
    assert Matcher()._bridges(learned) is None
    assert Matcher(bridges="on")._bridges(learned) == spec
    assert Matcher(bridges="off")._bridges(plain) is None
    assert Matcher(bridge_out=0, bridge_in=0)._bridges(plain) is None
    with pytest.raises(ParameterError, match="bridges must be one of"):
        Matcher(bridges="sometimes").validate_params()
    # what was recorded reads back as the mode that gives it, ``auto`` where auto does
    assert [spec_params(None, None, recorded, specs)["bridges"]
            for recorded, specs in ((spec, plain), (None, learned), (None, plain), (spec, learned))
            ] == ["auto", "auto", "off", "on"]
