"""The learned embedders (arcface_text, arcface_image) as pipeline elements: out-of-fold vectors
in training (no leaked labels), the all-rows encoder carried by the model to submit, reuse of
trained fold models, refusals."""
from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest
from conftest import run_cli

from common.errors import InputError
from common.folds import group_folds
from common.postings import label_codes
from embedders import create_embedder, embed_catalog

# Two training steps of batch 16 with five of MiniLM's six layers frozen: seconds per model.
TINY = {"max_steps": 2, "freeze_layers": 5, "training": {"batch_size": 16}}
TINY_SPEC = 'arcface_text:max_steps=2:freeze_layers=5:training={"batch_size":16}'


@pytest.fixture(scope="module")
def small_catalog(shopee_train) -> pl.DataFrame:
    """The postings of Shopee's first 60 label groups (about 130 postings)."""
    first = shopee_train["label_group"].unique(maintain_order=True)[:60]
    return shopee_train.filter(pl.col("label_group").is_in(first.to_list()))


def test_out_of_fold_vectors_do_not_see_their_folds_labels(small_catalog, tmp_path):
    embedder = create_embedder("arcface_text", **TINY)
    first = embedder.embed(small_catalog, workspace=tmp_path / "a")
    fold = group_folds(label_codes(small_catalog), 5, 42)
    # Scramble the labels of fold 0's postings among themselves: the folds stay the same
    # (same groups, same sizes), the models of folds 1-4 now train on wrong labels there.
    rows = np.flatnonzero(fold == 0)
    labels = small_catalog["label_group"].to_numpy().copy()
    labels[rows] = np.random.default_rng(0).permutation(labels[rows])
    assert (labels[rows] != small_catalog["label_group"].to_numpy()[rows]).any()
    scrambled = small_catalog.with_columns(pl.Series("label_group", labels))
    assert (group_folds(label_codes(scrambled), 5, 42) == fold).all()
    second = create_embedder("arcface_text", **TINY).embed(scrambled, workspace=tmp_path / "b")
    np.testing.assert_array_equal(second.vectors[rows], first.vectors[rows])
    others = np.flatnonzero(fold != 0)
    assert not np.allclose(second.vectors[others], first.vectors[others])
    assert first.manifest["encoder"] == str(tmp_path / "a" / "final")
    assert np.allclose(np.linalg.norm(first.vectors, axis=1), 1, atol=1e-4)
    # The out-of-fold folder is a `precomputed` one of these postings, as train-embedder's.
    served = create_embedder("precomputed", path=str(tmp_path / "a" / "oof")).embed(small_catalog)
    np.testing.assert_allclose(served.vectors, first.vectors, atol=1e-6)


def test_trained_models_are_reused_and_stale_ones_retrained(small_catalog, tmp_path,
                                                            monkeypatch):
    import embedders.arcface.folds as folds

    calls = []
    train = folds.train_encoder
    monkeypatch.setattr(folds, "train_encoder", lambda *a, **k: calls.append(1) or train(*a, **k))
    embedder = create_embedder("arcface_text", **TINY)
    first = embed_catalog(embedder, small_catalog, tmp_path / "cache")
    assert len(calls) == 6  # five folds and the all-rows model
    again = embed_catalog(embedder, small_catalog, tmp_path / "cache")  # the vectors' cache
    np.testing.assert_array_equal(again.vectors, first.vectors)
    # The all-rows model gone: trained again, the fold models reused from their checkpoints.
    shutil.rmtree(first.manifest["encoder"])
    rebuilt = embed_catalog(embedder, small_catalog, tmp_path / "cache")
    assert len(calls) == 7
    np.testing.assert_array_equal(rebuilt.vectors, first.vectors)
    # Other training settings are another key: everything trains again.
    embed_catalog(create_embedder("arcface_text", **{**TINY, "epochs": 3.0}), small_catalog,
                  tmp_path / "cache")
    assert len(calls) == 13


def test_training_needs_labels_and_settings_are_checked(small_catalog, tmp_path):
    with pytest.raises(InputError, match="label groups"):
        create_embedder("arcface_text", **TINY).embed(small_catalog.drop("label_group"))
    with pytest.raises(ValueError, match="unknown recipe"):
        create_embedder("arcface_text", recipe="nonesuch")
    with pytest.raises(ValueError, match="unknown training settings"):
        create_embedder("arcface_text", training={"learning_rate": 1})
    with pytest.raises(InputError, match="no trained encoder"):
        create_embedder("arcface_text", checkpoint=str(tmp_path)).model_fingerprint()
    done = run_cli("candidates", "--postings", str(write(small_catalog.drop("label_group"),
                                                         tmp_path)),
                   "--work", str(tmp_path / "w"), "--embedders", f"tfidf,{TINY_SPEC}")
    assert done.returncode == 2 and "label_group" in done.stderr, done.stderr


def test_text_training_defaults_are_config_and_a_given_training_replaces_them():
    from embedders.arcface import TrainingSettings
    from embedders.learned import TEXT_TRAINING

    default = create_embedder("arcface_text")
    assert default.get_config()["training"] == TEXT_TRAINING  # recorded, hence in the key
    assert default.training_settings().batch_size == TEXT_TRAINING["batch_size"]
    # A given training (a recorded {} too) means what it says, on TrainingSettings' defaults.
    given = create_embedder("arcface_text", training={"lr": 3e-4})
    assert given.training_settings().lr == 3e-4
    assert given.training_settings().batch_size == TrainingSettings().batch_size
    recorded = create_embedder("arcface_text", **{**default.get_config(), "training": {}})
    assert recorded.training_settings().amp_dtype == TrainingSettings().amp_dtype
    assert len({e.cache_key("x") for e in (default, given, recorded)}) == 3
    with pytest.raises(ValueError, match="must be a dict"):
        create_embedder("arcface_text", training="lr=1")


def write(frame: pl.DataFrame, folder, name: str = "postings.csv"):
    frame.write_csv(folder / name)
    return folder / name


def test_candidates_train_ranker_submit_carry_the_trained_encoder(small_catalog, shopee_dir,
                                                                  tmp_path):
    """The CLI end to end from a clean work directory: the model carries the all-rows encoder
    and submit embeds an unlabelled catalog with it, from wherever the model folder is."""
    postings = write(small_catalog, tmp_path)
    work = tmp_path / "w"
    done = run_cli("candidates", "--postings", str(postings), "--work", str(work), "--k", "10",
                   "--embedders", f"tfidf,phash,{TINY_SPEC}")
    assert done.returncode == 0, done.stderr
    table = pl.read_parquet(work / "candidates.parquet")
    assert "sim_arcface_text" in table.columns
    done = run_cli("train-ranker", "--work", str(work), "--folds", "3")
    assert done.returncode == 0, done.stderr
    schema = json.loads((work / "model" / "schema.json").read_text())
    spec = next(s for s in schema["embedders"] if s["name"] == "arcface_text")
    assert spec["config"]["checkpoint"] == "encoders/arcface_text"
    assert (work / "model" / "encoders" / "arcface_text" / "encoder"
            / "model.safetensors").is_file()
    assert any("arcface_text" in feature["name"] for feature in schema["features"])
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(work / "model", moved)
    shutil.rmtree(work)  # nothing of the training run is left but the model
    done = run_cli("submit", "--postings", str(shopee_dir / "test.csv"), "--model", str(moved),
                   "--out", str(tmp_path / "submission.csv"), "--work", str(tmp_path / "s"))
    assert done.returncode == 0, done.stderr
    submission = pl.read_csv(tmp_path / "submission.csv")
    assert submission.height == pl.read_csv(shopee_dir / "test.csv").height
    assert (tmp_path / "s" / "embeddings" / "arcface_text.applied" / "vectors.npy").is_file()
    # The encoder missing from the model folder: refused, naming schema.json.
    shutil.rmtree(moved / "encoders")
    done = run_cli("submit", "--postings", str(shopee_dir / "test.csv"), "--model", str(moved),
                   "--out", str(tmp_path / "again.csv"))
    assert done.returncode == 2 and "schema.json" in done.stderr, done.stderr
    assert not (tmp_path / "again.csv").exists()


def test_arcface_image_trains_out_of_fold_and_applies_its_checkpoint(tmp_path):
    """Generated photos: 12 products, 3 shots each (colour blocks with a shifted stripe)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    names, groups = [], []
    for g in range(12):
        colour = rng.integers(0, 255, 3)
        for shot in range(3):
            pixels = np.full((48, 48, 3), colour, np.uint8)
            pixels[:, 8 * shot:8 * shot + 6] = 255 - colour
            name = f"g{g}_{shot}.png"
            Image.fromarray(pixels).save(tmp_path / name)
            names.append(name)
            groups.append(str(g))
    names[5] = "absent.png"  # one unreadable image: trained without it, flagged missing
    postings = pl.DataFrame({"posting_id": [f"p{i}" for i in range(len(names))],
                             "title": ["x"] * len(names), "image": names,
                             "label_group": groups})
    config = {"max_steps": 1, "image_size": 32, "folds": 3, "training": {"batch_size": 8}}
    embedder = create_embedder("arcface_image", **config)
    trained = embed_catalog(embedder, postings, tmp_path / "cache", tmp_path)
    assert trained.modality == "image" and trained.missing.tolist() == [r == 5 for r in
                                                                         range(len(names))]
    assert not trained.vectors[5].any() and np.allclose(
        np.linalg.norm(np.delete(trained.vectors, 5, axis=0), axis=1), 1, atol=1e-4)
    applying = create_embedder("arcface_image", **config, checkpoint=trained.manifest["encoder"])
    assert applying.cache_name == "arcface_image.applied"
    applied = applying.embed(postings.drop("label_group"), tmp_path)
    assert applied.vectors.shape == trained.vectors.shape and applied.missing[5]


def test_postings_without_a_title_are_trained_without_and_flagged(small_catalog, tmp_path):
    blanked = small_catalog.with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("")).otherwise(pl.col("title"))
        .alias("title"))
    embedding = create_embedder("arcface_text", **TINY, folds=2).embed(
        blanked, workspace=tmp_path / "w")
    assert embedding.missing.tolist()[:3] == [True, True, False]
    assert not embedding.vectors[:2].any() and embedding.vectors[2].any()
    served = create_embedder("precomputed", path=str(tmp_path / "w" / "oof")).embed(blanked)
    np.testing.assert_array_equal(served.missing, embedding.missing)
    np.testing.assert_allclose(served.vectors, embedding.vectors, atol=1e-6)
