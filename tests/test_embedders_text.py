"""Text embedders (MiniLM, e5), the frozen-layer cache of text ArcFace training, and the
``train-embedder`` command with its P2 out-of-fold vectors feeding ``candidates``."""
from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest

from embedders import create_embedder, embed_catalog
from tests.conftest import run_cli

TITLES = ["Kaos Polos Pria Cotton Combed 30s", "kaos polos pria cotton combed 30s hitam", "",
          "Masker Medis 3ply Earloop isi 50", "masker medis 3 ply earloop 50pcs",
          "Fry Pan Teflon 18 cm Kangaroo"]


def postings(titles=TITLES) -> pl.DataFrame:
    return pl.DataFrame({"posting_id": [f"p{i}" for i in range(len(titles))], "title": titles})


def test_minilm_vectors_are_unit_rows_and_related_titles_are_close(tmp_path):
    embedding = embed_catalog(create_embedder("minilm"), postings(), tmp_path)
    v = embedding.vectors
    assert v.dtype == np.float32 and v.shape == (6, 384)
    assert embedding.missing.tolist() == [False, False, True, False, False, False]
    assert np.all(v[2] == 0)
    np.testing.assert_allclose(np.linalg.norm(v[[0, 1, 3, 4, 5]], axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 3] and sims[3, 4] > sims[3, 5]
    again = embed_catalog(create_embedder("minilm"), postings(), tmp_path)  # from the cache
    assert again.manifest["key"] == embedding.manifest["key"]


def test_a_changed_model_folder_or_config_never_reuses_the_cache(tmp_path):
    from embedders.text import default_minilm_path

    copy = tmp_path / "model"
    shutil.copytree(default_minilm_path(), copy)
    same = create_embedder("minilm", model_path=str(copy))
    base = create_embedder("minilm")
    assert same.model_fingerprint() == base.model_fingerprint()
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    assert create_embedder("minilm", model_path=str(copy)).model_fingerprint() != \
        base.model_fingerprint()
    assert create_embedder("minilm", max_seq_length=32).cache_key("x") != base.cache_key("x")


def test_e5_embeds_multilingual_titles():
    embedding = create_embedder("e5").embed(postings())
    v = embedding.vectors
    assert v.shape == (6, 384) and embedding.missing[2] and not embedding.missing[0]
    sims = v @ v.T
    assert sims[3, 4] > sims[3, 0]


def test_frozen_layer_cache_gives_the_full_models_embeddings():
    from embedders.arcface import TextEncoder, embed_items

    encoder = TextEncoder(max_seq_length=32, freeze_layers=4)
    titles = [t for t in TITLES if t]
    full = embed_items(encoder, titles)
    cached = embed_items(encoder, encoder.precompute_frozen(titles))
    np.testing.assert_allclose(cached, full, atol=2e-3)  # float16 storage of the states


def train_small_text_model(shopee_train, tmp_path, groups: int, rows: int, *options: str):
    """``train-embedder`` on the first ``rows`` postings of ``groups`` Shopee groups, 2 steps;
    returns (the postings, the output folder, the finished command)."""
    first = shopee_train["label_group"].unique(maintain_order=True)[:groups]
    small = shopee_train.filter(pl.col("label_group").is_in(first.to_list())).head(rows)
    small.write_csv(tmp_path / "small.csv")
    out = tmp_path / "text_model"
    done = run_cli("train-embedder", "--modality", "text", "--postings",
                   str(tmp_path / "small.csv"), "--out", str(out), *options, "--max-steps", "2",
                   "--batch-size", "16", "--freeze-layers", "5")
    return small, out, done


def test_train_embedder_oof_feeds_candidates(shopee_train, tmp_path):
    small, out, done = train_small_text_model(shopee_train, tmp_path, 40, 80, "--oof",
                                              "--folds", "2")
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "train_embedder.json").read_text())
    assert report["folds"] == 2 and report["device"] == "cpu"
    assert np.load(out / "oof" / "vectors.npy").shape == (small.height, 384)
    assert (out / "final" / "encoder" / "model.safetensors").is_file()
    done = run_cli("candidates", "--postings", str(tmp_path / "small.csv"), "--work",
                   str(tmp_path / "w"), "--embedders",
                   f"tfidf,precomputed:path={out / 'oof'},minilm:model_path="
                   f"{out / 'final' / 'encoder'},phash", "--k", "5")
    assert done.returncode == 0, done.stderr
    table = pl.read_parquet(tmp_path / "w" / "candidates.parquet")
    assert {"sim_precomputed", "sim_minilm"} <= set(table.columns)


def test_train_embedder_bad_input_is_one_line_and_exit_2(tmp_path):
    postings().write_csv(tmp_path / "unlabelled.csv")
    done = run_cli("train-embedder", "--modality", "text", "--postings",
                   str(tmp_path / "unlabelled.csv"), "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert "label_group" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("candidates", "--postings", str(tmp_path / "unlabelled.csv"), "--work",
                   str(tmp_path / "w"), "--embedders", f"precomputed:path={tmp_path}")
    assert done.returncode == 2 and "manifest.json" in done.stderr


def test_lsa_vectors_do_not_depend_on_the_blas_thread_count(monkeypatch):
    """A Dask worker runs with one BLAS thread, a command with all cores: the same catalog
    must get the same vectors (on a one-core machine both runs use one thread)."""
    import contextlib

    from threadpoolctl import threadpool_info, threadpool_limits

    from datasets import generate_catalog

    catalog = generate_catalog(n_products=60, seed=3)

    def vectors(threads: int):
        with threadpool_limits(limits=threads, user_api="blas"):
            return create_embedder("tfidf_char").embed(catalog).vectors

    assert vectors(1).tobytes() == vectors(2).tobytes()
    # The check can fail: without the embedder's own limit the two differ where there are
    # two cores.
    import embedders.tfidf

    monkeypatch.setattr(embedders.tfidf, "threadpool_limits",
                        lambda **_: contextlib.nullcontext())
    if max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
           default=1) >= 2:
        assert vectors(1).tobytes() != vectors(2).tobytes()


def test_lsa_fitted_on_a_sample_projects_every_row_and_keeps_neighbours():
    from datasets import generate_catalog

    catalog = generate_catalog(n_products=150, seed=5)
    whole = create_embedder("tfidf_char", svd_components=32, svd_fit_rows=None).embed(catalog)
    sampled = create_embedder("tfidf_char", svd_components=32, svd_fit_rows=300).embed(catalog)
    again = create_embedder("tfidf_char", svd_components=32, svd_fit_rows=300).embed(catalog)
    assert len(catalog) > 300 and sampled.vectors.shape == whole.vectors.shape
    np.testing.assert_array_equal(sampled.vectors, again.vectors)  # seeded sample
    assert not np.array_equal(sampled.vectors, whole.vectors)

    def top5(vectors):
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :5]

    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5(sampled.vectors),
                                                               top5(whole.vectors))])
    assert overlap > 0.8


def test_train_embedder_takes_a_recipe_and_explicit_options_over_it(shopee_train, tmp_path):
    _, out, done = train_small_text_model(shopee_train, tmp_path, 30, 60,
                                          "--recipe", "contrastive-xbm", "--xbm", "32")
    assert done.returncode == 0, done.stderr
    assert "contrastive-xbm recipe (contrastive loss)" in done.stdout + done.stderr
    saved = json.loads((out / "final" / "arcface.json").read_text())["settings"]
    assert (saved["loss"], saved["miner"], saved["xbm"], saved["sampler"]) == \
        ("contrastive", "multi-similarity", 32, "m-per-class")
    done = run_cli("train-embedder", "--modality", "text", "--postings",
                   str(tmp_path / "small.csv"), "--out", str(out), "--loss", "triplet",
                   "--sampler", "random")
    assert done.returncode == 2 and "m-per-class" in done.stderr
    assert "Traceback" not in done.stderr
