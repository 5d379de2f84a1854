"""Approximate search (`--search ann`): recall against brute force, the exact search's output
contract, reproducibility, the bounded sparse walk, and the setting through the commands."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from candidates import find_neighbours, top_k
from candidates.ann import cells
from candidates.search import SPARSE_CAP_MAX, _top_k_sparse, bounded_walk, search_method
from datasets import generate_catalog
from embedders.base import l2_normalise_rows
from tests.conftest import run_cli


def clustered(n=4000, d=32, clusters=150, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    return l2_normalise_rows((centres[rng.integers(0, clusters, n)]
                              + 0.6 * rng.normal(size=(n, d))).astype(np.float32))


def random_sparse(n=2000, terms=400, density=0.02, seed=1):
    matrix = sp.random(n, terms, density=density, random_state=seed, format="csr",
                       dtype=np.float32)
    matrix.data = np.random.default_rng(seed).random(matrix.nnz).astype(np.float32) + 0.1
    return l2_normalise_rows(matrix)


def recall(found, exact):
    return np.mean([len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, (e >= 0).sum())
                    for a, e in zip(found, exact)])


def test_ivf_keeps_the_exact_neighbours_and_records_its_parameters():
    vectors = clustered()
    exact, exact_sims = top_k(vectors, 20)
    found, sims, info = find_neighbours(vectors, 20, method="ann")
    assert recall(found, exact) >= 0.95
    assert info["method"] == "ann" and info["index"] == "ivf_flat"
    assert info["nlist"] == cells(len(vectors)) and 1 <= info["nprobe"] <= info["nlist"]
    assert info["calibration"]["recall"] >= info["calibration"]["target"]
    # The similarities are the inner products, up to rounding.
    rows = np.repeat(np.arange(len(vectors)), 20)
    np.testing.assert_allclose(sims.ravel(), np.einsum("ij,ij->i", vectors[rows],
                                                       vectors[found.ravel()]), atol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_ann_output_contract(kind):
    vectors = clustered(600, 16) if kind == "dense" else random_sparse(600)
    missing = np.zeros(600, dtype=bool)
    missing[[5, 17]] = True
    if kind == "sparse":  # a row without a vector has no terms
        vectors = sp.csr_matrix(vectors.multiply(~missing[:, None]))
    index, sims, info = find_neighbours(vectors, 12, missing, method="ann")
    assert info["method"] == "ann"
    assert index.shape == sims.shape == (600, 12)
    assert index.dtype == np.int64 and sims.dtype == np.float32
    assert not (index == np.arange(600)[:, None]).any()                    # self removed
    assert (index[[5, 17]] == -1).all() and not np.isin(index, [5, 17]).any()
    assert np.isneginf(sims[index < 0]).all() and np.isfinite(sims[index >= 0]).all()
    valid = index >= 0
    assert (valid[:, :-1] | ~valid[:, 1:]).all()                          # padding last
    # Best first, ties in index order.
    key = np.where(valid, -sims, 10.0)
    assert (np.diff(key, axis=1) >= 0).all()
    tied = (np.diff(key, axis=1) == 0) & valid[:, 1:]
    assert (np.diff(index, axis=1)[tied] > 0).all()
    # k beyond the catalog: padded.
    small, small_sims, _ = find_neighbours(vectors[:4], 10, method="ann")
    assert small.shape == (4, 10) and (small[:, 3:] == -1).all()


def test_ann_is_reproducible_and_thread_count_free():
    import faiss

    vectors = clustered(3000, 24, seed=4)
    first = find_neighbours(vectors, 15, method="ann")
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        second = find_neighbours(vectors, 15, method="ann")
    finally:
        faiss.omp_set_num_threads(threads)
    assert first[0].tobytes() == second[0].tobytes()
    assert first[1].tobytes() == second[1].tobytes()
    assert first[2] == second[2]


def test_bounded_sparse_walk_is_exact_above_every_df_and_exact_in_its_similarities():
    vectors = random_sparse()
    exact = _top_k_sparse(vectors, 10)
    unbounded = _top_k_sparse(vectors, 10, cap=10**9, prefix=10**9)
    assert exact[0].tobytes() == unbounded[0].tobytes()
    assert exact[1].tobytes() == unbounded[1].tobytes()
    df = np.diff(vectors.tocsc().indptr)
    cap = int(np.quantile(df, 0.5))                # half the terms are "frequent"
    index, sims = _top_k_sparse(vectors, 10, cap=cap, prefix=cap)
    dense = vectors.toarray()
    valid = index >= 0
    rows = np.repeat(np.arange(len(dense)), 10).reshape(index.shape)
    np.testing.assert_allclose(sims[valid], np.einsum("ij,ij->i", dense[rows[valid]],
                                                      dense[index[valid]]), rtol=1e-5, atol=1e-6)
    assert recall(index, exact[0]) >= 0.9


def test_the_bounded_walks_work_per_query_stops_growing_with_the_catalog():
    """A query sums whole lists of at most df_cap rows and reads at most prefix rows of a longer
    one: bounds that stop growing with n, so the whole walk grows linearly."""
    walks = [bounded_walk(n, 50) for n in (10_000, 100_000, 1_000_000, 100_000_000)]
    caps = [walk["df_cap"] for walk in walks]
    assert caps == sorted(caps) and caps[-1] == caps[-2] == SPARSE_CAP_MAX
    assert walks[-1]["prefix"] == walks[-2]["prefix"] == max(200, SPARSE_CAP_MAX // 32)


def test_auto_is_exact_below_the_crossover():
    assert search_method("auto", clustered(500, 8)) == "exact"
    assert search_method("auto", random_sparse(500)) == "exact"
    assert find_neighbours(clustered(500, 8), 5, method="auto")[2] == {"method": "exact"}
    with pytest.raises(ValueError):
        search_method("fast", clustered(10, 4))


def test_search_is_recorded_and_replayed_and_a_wrong_value_exits_2(tmp_path):
    generate_catalog(n_products=80, seed=31).write_csv(tmp_path / "train.csv")
    work = tmp_path / "w"
    done = run_cli("candidates", "--postings", str(tmp_path / "train.csv"), "--work", str(work),
                   "--k", "10", "--search", "ann")
    assert done.returncode == 0, done.stderr
    report = json.loads((work / "candidates.json").read_text())
    assert report["search"] == "ann"
    by_embedder = report["search_by_embedder"]
    assert set(by_embedder) == {"tfidf", "tfidf_char"}
    assert by_embedder["tfidf"]["index"] == "bounded_inverted_index"
    assert by_embedder["tfidf_char"]["index"] == "ivf_flat"
    done = run_cli("train-ranker", "--work", str(work), "--folds", "3")
    assert done.returncode == 0, done.stderr
    schema = json.loads((work / "model" / "schema.json").read_text())
    assert schema["params"]["search"] == "ann"
    assert schema["search_by_embedder"] == by_embedder
    done = run_cli("submit", "--postings", str(tmp_path / "train.csv"), "--model", str(work),
                   "--work", str(tmp_path / "s"), "--out", str(tmp_path / "s.csv"),
                   "--search", "exact")
    assert done.returncode == 0, done.stderr
    submitted = json.loads((tmp_path / "s" / "submit.json").read_text())
    assert submitted["search_by_embedder"] == {"tfidf": {"method": "exact"},
                                               "tfidf_char": {"method": "exact"}}
    for command in (["candidates", "--postings", str(tmp_path / "train.csv"), "--work",
                     str(tmp_path / "x")],
                    ["submit", "--postings", str(tmp_path / "train.csv"), "--model", str(work),
                     "--out", str(tmp_path / "s.csv")]):
        done = run_cli(*command, "--search", "fast")
        assert done.returncode == 2 and "--search" in done.stderr


def test_matcher_refuses_an_unknown_search():
    from pipeline import Matcher, ParameterError

    with pytest.raises(ParameterError, match="search must be one of exact, ann, auto"):
        Matcher(search="fast").validate_params()
