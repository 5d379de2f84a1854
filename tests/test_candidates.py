"""Neighbour search against brute force, hash blocks, and the candidate table's invariants."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from candidates import (allocation_spec, build_candidates, candidate_recall, global_entries,
                        pair_similarity, top_k)
from candidates.blocks import hash_block_pairs
from candidates.bridges import bridge_keys, bridge_spec
from candidates.search import find_neighbours, query_shards
from common.pairs import find_pairs, pair_keys, reverse_positions, split_keys, unique_keys
from embedders import Embedding
from embedders.base import l2_normalise_rows


def brute_top_k(vectors, k):
    dense = vectors.toarray() if sp.issparse(vectors) else vectors
    sims = dense @ dense.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def random_dense(n=300, d=16, seed=0):
    return l2_normalise_rows(np.random.default_rng(seed).normal(size=(n, d)))


def test_dense_top_k_matches_brute_force():
    vectors = random_dense()
    index, sims = top_k(vectors, 10)
    ref_index, ref_sims = brute_top_k(vectors, 10)
    np.testing.assert_allclose(sims, ref_sims, rtol=1e-5, atol=1e-5)
    assert (index == ref_index).mean() > 0.99  # only float ties may reorder
    assert not (index == np.arange(len(vectors))[:, None]).any()


def test_sparse_top_k_matches_brute_force():
    rng = np.random.default_rng(1)
    matrix = sp.random(400, 60, density=0.08, random_state=2, format="csr", dtype=np.float32)
    matrix.data = rng.random(matrix.nnz).astype(np.float32)
    vectors = l2_normalise_rows(matrix)
    index, sims = top_k(vectors, 7)
    ref_index, ref_sims = brute_top_k(vectors, 7)
    shares_a_term = ref_sims > 0
    assert (~shares_a_term).any()  # the case below is exercised
    np.testing.assert_allclose(sims[shares_a_term], ref_sims[shares_a_term], rtol=1e-5,
                               atol=1e-6)
    # Rows that share no term are not neighbours: those slots are empty.
    assert (index[~shares_a_term] == -1).all() and np.isneginf(sims[~shares_a_term]).all()
    assert (index[shares_a_term] >= 0).all()


def test_query_shards_give_the_lists_of_a_whole_search():
    # what a Dask cluster runs: each shard searches only its own rows, the same as a whole search
    rng = np.random.default_rng(3)
    dense = random_dense(n=500)
    sparse = l2_normalise_rows(sp.random(500, 60, density=0.08, random_state=4, format="csr",
                                         dtype=np.float32))
    missing = rng.random(500) < 0.05
    for vectors in (dense, sparse):
        whole = find_neighbours(vectors, 10, missing, "exact")
        shards = [find_neighbours(vectors, 10, missing, "exact", queries=shard)
                  for shard in query_shards(vectors, 7)]
        # dense shards are whole blocks of the product (one at this size), sparse ones rows
        assert sum(len(s[0]) for s in shards) == 500 and (len(shards) > 1) == sp.issparse(vectors)
        np.testing.assert_array_equal(np.vstack([s[0] for s in shards]), whole[0])
        np.testing.assert_array_equal(np.vstack([s[1] for s in shards]), whole[1])


def test_missing_rows_have_no_neighbours_and_are_nobodys_neighbour():
    vectors = random_dense(50)
    missing = np.zeros(50, dtype=bool)
    missing[[3, 7]] = True
    index, sims = top_k(vectors, 5, missing)
    assert (index[3] == -1).all() and (index[7] == -1).all()
    assert not np.isin(index, [3, 7]).any()
    assert np.isneginf(sims[index < 0]).all()


def test_k_larger_than_catalog_is_padded():
    index, sims = top_k(random_dense(4), 10)
    assert index.shape == (4, 10)
    assert (index[:, :3] >= 0).all() and (index[:, 3:] == -1).all()


def test_build_candidates_union_symmetric_sorted():
    vectors = random_dense(120, 8, seed=3)
    hashes = np.arange(120, dtype=np.uint64) % 40  # blocks of three equal hashes
    embeddings = [Embedding("dense", "dense", vectors, np.zeros(120, bool)),
                  Embedding("phash", "hash", hashes, np.zeros(120, bool))]
    found = build_candidates(embeddings, k=5)
    table = found.table
    i, j = table["i"].to_numpy().astype(np.int64), table["j"].to_numpy().astype(np.int64)
    keys = i * 120 + j
    assert (np.diff(keys) > 0).all()                    # sorted, no duplicates
    assert (i != j).all()
    assert (reverse_positions(i, j, 120) >= 0).all()    # closed under symmetry
    assert (hashes[i] == hashes[j]).sum() == 120 * 2    # every block pair present
    np.testing.assert_allclose(table["sim_dense"].to_numpy(), pair_similarity(vectors, i, j))
    ranks = table["rank_dense"].to_numpy()
    listed = ~np.isnan(ranks.astype(float))
    assert listed.sum() == 120 * 5
    assert ranks[listed].min() == 1 and ranks[listed].max() == 5


def brute_near_pairs(hashes, radius):
    distance = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    np.fill_diagonal(distance, 99)
    i, j = np.nonzero(distance <= radius)
    return set(zip(i.tolist(), j.tolist()))


@pytest.mark.parametrize("radius", [0, 1, 2, 4])
def test_hash_pairs_within_radius_match_brute_force(radius):
    rng = np.random.default_rng(radius)
    base = rng.integers(0, 2**63, size=60, dtype=np.uint64)
    # Copies of each hash with 0-5 random bits flipped: re-encoded, resized photos.
    flips = [np.bitwise_or.reduce(np.uint64(1) << rng.choice(64, size=f, replace=False)
                                  .astype(np.uint64)) if f else np.uint64(0)
             for f in rng.integers(0, 6, size=240)]
    hashes = np.concatenate([base, base[np.arange(240) % 60] ^ np.array(flips, np.uint64)])
    missing = np.zeros(len(hashes), bool)
    missing[::37] = True
    i, j = hash_block_pairs(hashes, missing, radius=radius)
    found = list(zip(i.tolist(), j.tolist()))
    assert len(found) == len(set(found))  # each pair once
    keep = np.flatnonzero(~missing)
    expected = {(keep[a], keep[b]) for a, b in brute_near_pairs(hashes[keep], radius)}
    assert set(found) == expected


def test_stock_photo_hash_and_its_near_copies_are_not_paired(caplog):
    stock = np.full(201, 7, np.uint64)  # more postings than MAX_BLOCK share one hash
    hashes = np.concatenate([stock, [7 ^ 1, 7 ^ 1, 1 << 40]]).astype(np.uint64)
    i, j = hash_block_pairs(hashes, np.zeros(len(hashes), bool), radius=2)
    assert sorted(zip(i.tolist(), j.tolist())) == [(201, 202), (202, 201)]
    assert "1 hash blocks with more than 200 postings" in caplog.text


def test_candidate_recall():
    labels = np.array([0, 0, 0, 1, 1])
    i, j = np.array([0, 1, 3]), np.array([1, 0, 4])  # 3 of the 8 true ordered pairs
    assert candidate_recall(i, j, labels) == 3 / 8


def test_sparse_pair_similarity_matches_dense_in_any_pair_order():
    rng = np.random.default_rng(5)
    matrix = sp.random(200, 40, density=0.15, random_state=6, format="coo", dtype=np.float32)
    # Duplicate (row, column) entries sum, as scipy's own products treat them.
    doubled = sp.coo_matrix((np.concatenate([matrix.data, matrix.data[:50]]),
                             (np.concatenate([matrix.row, matrix.row[:50]]),
                              np.concatenate([matrix.col, matrix.col[:50]]))), shape=(200, 40))
    dense = doubled.toarray()
    i, j = rng.integers(0, 200, 5000), rng.integers(0, 200, 5000)  # unsorted, with repeats
    expected = np.einsum("ij,ij->i", dense[i], dense[j])
    np.testing.assert_allclose(pair_similarity(doubled.tocsr(), i, j), expected, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(pair_similarity(sp.csr_matrix(dense), np.sort(i), j),
                               np.einsum("ij,ij->i", dense[np.sort(i)], dense[j]), rtol=1e-5,
                               atol=1e-6)


def test_ties_are_ordered_by_index_and_the_lowest_are_kept():
    # Twelve identical rows and a few others: each copy's top 3 are other copies, in index order;
    # the heaps also settle which copies make the list (the lowest-numbered ones).
    rows = np.vstack([np.tile([1.0, 0.0, 0.0], (12, 1)), random_dense(8, 3, seed=9)])
    vectors = l2_normalise_rows(rows.astype(np.float32))
    dense_index, dense_sims = top_k(vectors, 3)
    assert (dense_index[:12] < 12).all() and (dense_sims[:12] == 1).all()
    assert (np.diff(dense_index[:12], axis=1) > 0).all()
    assert not (dense_index == np.arange(len(vectors))[:, None]).any()
    sparse_index, _ = top_k(sp.csr_matrix(vectors), 3)
    for index in (dense_index, sparse_index):
        assert index[0].tolist() == [1, 2, 3]
        assert index[5].tolist() == [0, 1, 2]
        assert index[11].tolist() == [0, 1, 2]



def test_pair_look_ups_match_a_dictionary_in_any_order_with_repeats():
    rng = np.random.default_rng(5)
    n = 30
    pairs = rng.integers(0, n, (400, 2))  # repeated pairs and self pairs, unsorted
    queries = rng.integers(0, n, (300, 2))
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    for table in (pairs, pairs[order]):  # an unsorted and a sorted table
        i, j = table[:, 0], table[:, 1]
        first = {}
        for position, pair in enumerate(zip(i.tolist(), j.tolist())):
            first.setdefault(pair, position)
        assert find_pairs(i, j, queries[:, 0], queries[:, 1], n).tolist() == \
            [first.get(pair, -1) for pair in map(tuple, queries.tolist())]
        assert reverse_positions(i, j, n).tolist() == \
            [first.get((b, a), -1) for a, b in zip(i.tolist(), j.tolist())]
        keys = unique_keys(pair_keys(i, j, n))
        assert np.array_equal(keys, np.unique(i * n + j))
        assert list(zip(*(half.tolist() for half in split_keys(keys, n)))) == sorted(first)
    empty = np.zeros(0, np.int64)
    assert find_pairs(empty, empty, queries[:, 0], queries[:, 1], n).tolist() == [-1] * 300
    assert len(find_pairs(pairs[:, 0], pairs[:, 1], empty, empty, n)) == 0
    assert len(unique_keys(empty)) == 0


def _sorted_lists(n=200, depth=12, seed=5):
    """Lists best first, some rows shorter than the depth (-1 past their last neighbour)."""
    rng = np.random.default_rng(seed)
    sims = -np.sort(-rng.random((n, depth)), axis=1)
    index = rng.integers(0, n, size=(n, depth))
    lengths = rng.integers(0, depth + 1, size=n)
    index[np.arange(depth) >= lengths[:, None]] = -1
    return index, np.where(index >= 0, sims, 0.0)


def test_global_entries_keep_the_most_similar_of_the_catalog_and_a_few_per_row():
    index, sims = _sorted_lists()
    valid = index >= 0
    kept = global_entries(index, sims, k=4, at_least=2)
    assert not (kept & ~valid).any()
    counts = kept.sum(axis=1)
    assert kept.sum() == 4 * valid[:, 0].sum()                    # k per row with a neighbour
    assert (counts >= np.minimum(valid.sum(axis=1), 2)).all()     # at least 2 where there are
    assert (kept == (np.arange(12) < counts[:, None])).all()      # a prefix of each row
    beyond = valid & (np.cumsum(valid, axis=1) > 2)               # the globally ranked entries
    assert sims[kept & beyond].min() >= sims[~kept & beyond].max()
    assert counts.max() > 4 and (counts[valid.sum(axis=1) >= 4] < 4).any()  # long, short lists


def test_global_entries_keep_everything_within_budget_and_ties_together():
    index, sims = _sorted_lists()
    assert (global_entries(index, sims, k=12) == (index >= 0)).all()
    flat = np.full((6, 4), 0.5)
    assert global_entries(np.ones((6, 4), int), flat, k=2, at_least=1).all()  # all tied


def test_allocation_spec():
    assert allocation_spec("per_posting", 50) is None
    assert allocation_spec("global", 50) == {"depth": 100, "at_least": 5}
    assert allocation_spec("global", 50, 80)["depth"] == 80
    with pytest.raises(ValueError, match="allocation 'best' is not one of"):
        allocation_spec("best", 50)


def test_global_lists_in_the_candidate_table():
    vectors = random_dense(150, 8, seed=7)
    embeddings = [Embedding("dense", "dense", vectors, np.zeros(150, bool))]
    per_posting = build_candidates(embeddings, k=6)
    # every entry of a k-deep list kept: the per-posting table
    whole = build_candidates(embeddings, k=6, allocation={"depth": 6, "at_least": 6})
    assert whole.table.equals(per_posting.table)
    found = build_candidates(embeddings, k=6, allocation={"depth": 12, "at_least": 2})
    assert found.neighbours["dense"].index.shape == (150, 12)
    kept = global_entries(found.neighbours["dense"].index, found.neighbours["dense"].similarity,
                          6, 2)
    ranks = found.table["rank_dense"].to_numpy().astype(float)
    assert (~np.isnan(ranks)).sum() == kept.sum() == 6 * 150
    i = found.table["i"].to_numpy()[~np.isnan(ranks)]
    np.testing.assert_array_equal(np.bincount(i, minlength=150), kept.sum(axis=1))
    assert np.nanmax(ranks) > 6


def test_blended_vectors_find_the_pairs_and_the_plain_ones_give_their_similarity():
    from candidates import blend_neighbours

    vectors = random_dense(150, 8, seed=9)
    plain = Embedding("dense", "dense", vectors, np.zeros(150, bool))
    blended = blend_neighbours(plain, depth=3)
    allocation = {"depth": 12, "at_least": 2}
    by_blend = build_candidates([blended], k=6, allocation=allocation)
    found = build_candidates([plain], k=6, allocation=allocation, search_embeddings=[blended])
    table = found.table
    columns = ["i", "j", "rank_dense"]
    assert table.select(columns).equals(by_blend.table.select(columns))
    i, j = table["i"].to_numpy(), table["j"].to_numpy()
    np.testing.assert_allclose(table["sim_dense"].to_numpy(), pair_similarity(vectors, i, j))
    lists = found.neighbours["dense"]
    np.testing.assert_array_equal(lists.index, by_blend.neighbours["dense"].index)
    rows = np.repeat(np.arange(150), 12)
    np.testing.assert_allclose(lists.similarity.ravel(),
                               pair_similarity(vectors, rows, lists.index.ravel()), rtol=1e-6)
    assert not np.allclose(table["sim_dense"].to_numpy(), by_blend.table["sim_dense"].to_numpy())
    assert table["blend_sim_dense"].equals(by_blend.table["sim_dense"].alias("blend_sim_dense"))
    assert "blend_sim_dense" not in by_blend.table.columns


def test_bridge_keys_match_a_loop_over_links_and_lists():
    rng = np.random.default_rng(11)
    n, depth = 40, 6
    index = np.array([rng.choice(np.delete(np.arange(n), r), depth, replace=False)
                      for r in range(n)])
    index[3, 4:] = -1  # a short list
    a = rng.integers(0, n, 25)
    b = (a + rng.integers(1, n, 25)) % n
    expected = set()
    for x, y in zip(a.tolist(), b.tolist()):
        expected |= {(x, int(c)) for c in index[y, :2] if c >= 0 and c != x}  # y's best 2
        expected |= {(int(r), x) for r in range(n) if y in index[r, :3] and r != x}  # list y
    expected |= {(j, i) for i, j in expected}
    keys = unique_keys(bridge_keys(a, b, index, out=2, into=3))
    assert set(zip(*(side.tolist() for side in split_keys(keys, n)))) == expected


def test_bridges_take_the_lists_tail_only_where_photos_link():
    vectors = random_dense(120, 8, seed=5)
    hashes = np.arange(120, dtype=np.uint64) << np.uint64(20)  # no two alike …
    hashes[60:80] = hashes[40:60] ^ np.uint64(1)  # … but 20 re-encoded photos
    linked = Embedding("phash", "hash", hashes, np.zeros(120, bool))
    dense = Embedding("dense", "dense", vectors, np.zeros(120, bool))
    spec = bridge_spec(out=2, into=3, list_depth=4)
    plain = build_candidates([dense, linked], k=8)
    found = build_candidates([dense, linked], k=8, bridges=spec)
    ranks = found.table["rank_dense"].to_numpy().astype(float)
    assert np.nanmax(ranks) == 4  # every list pairs its first 4 only
    assert found.neighbours["dense"].index.shape == (120, 8)  # searched 8 deep
    i = found.table["i"].to_numpy().astype(np.int64)
    j = found.table["j"].to_numpy().astype(np.int64)
    a, b = hash_block_pairs(hashes, np.zeros(120, bool), radius=spec["radius"])
    bridged = unique_keys(bridge_keys(a, b, found.neighbours["dense"].index, 2, 3))
    assert np.isin(bridged, pair_keys(i, j, 120)).all()
    assert (reverse_positions(i, j, 120) >= 0).all()
    # a catalog without photos keeps its whole lists, with or without bridges asked for
    no_photos = Embedding("phash", "hash", hashes, np.ones(120, bool))
    assert build_candidates([dense, no_photos], k=8, bridges=spec).table.equals(
        build_candidates([dense, no_photos], k=8).table)
    assert found.table.height != plain.table.height
    assert (found.list_depth, plain.list_depth) == (4, 8)
    # a model replays its training lists' depth: where photos link, or where none do
    replayed = build_candidates([dense, no_photos], k=8, bridges=spec, list_depth=4)
    assert replayed.list_depth == 4 and np.nanmax(replayed.table["rank_dense"].to_numpy()) == 4
    whole = build_candidates([dense, linked], k=8, bridges=spec, list_depth=8)
    assert whole.list_depth == 8 and np.nanmax(whole.table["rank_dense"].to_numpy()) == 8
    with pytest.raises(ValueError, match="at least"):
        bridge_spec(out=-1, into=3, list_depth=4)
    assert bridge_spec(0, 0, 41) is None
