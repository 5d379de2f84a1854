"""Feature groups on a small generated catalog: values, groups, missing vectors."""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from candidates import build_candidates
from datasets import generate_catalog
from embedders import create_embedder, embed_catalog, hamming
from features import FEATURE_GROUPS, PairContext, build_features, view_columns


@pytest.fixture(scope="module")
def context():
    postings = generate_catalog(n_products=80, seed=3)
    embeddings = [embed_catalog(create_embedder(name), postings, None)
                  for name in ("tfidf", "tfidf_char", "phash")]
    found = build_candidates(embeddings, k=10)
    return PairContext(found.table, postings, {e.name: e for e in embeddings}, found.neighbours)


def test_every_group_builds_and_owns_its_columns(context):
    table = build_features(context)
    assert set(table.groups.values()) == set(FEATURE_GROUPS)
    assert table.frame.height == context.candidates.height
    assert table.matrix().dtype == np.float32
    assert all(table.frame[c].dtype.is_float() for c in table.names)


def test_phash_hamming_matches_bit_count(context):
    table = build_features(context, ["phash"])
    values = context.embeddings["phash"].vectors
    a, b = values[context.i[:50]], values[context.j[:50]]
    expected = [bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b)]
    np.testing.assert_array_equal(table.frame["phash_hamming"].to_numpy()[:50], expected)
    assert hamming(np.array([0], np.uint64), np.array([2**64 - 1], np.uint64))[0] == 64


def test_reverse_rank_is_the_rank_of_the_reverse_pair(context):
    frame = build_features(context, ["similarity"]).frame
    rank = frame["rank_tfidf"].to_numpy()
    rank_rev = frame["rank_rev_tfidf"].to_numpy()
    np.testing.assert_array_equal(rank_rev, rank[context.reverse])


def test_neighbourhood_gap_and_jaccard_bounds(context):
    frame = build_features(context, ["neighbourhood"]).frame
    jaccard = frame["nb_tfidf_jaccard10"].to_numpy()
    assert np.nanmin(jaccard) >= 0 and np.nanmax(jaccard) <= 1
    # The top-1 neighbour's gap is zero for the pair that is that neighbour.
    lists = context.neighbours["tfidf"]
    first = (context.j == lists.index[context.i, 0])
    np.testing.assert_allclose(frame["nb_tfidf_gap1_i"].to_numpy()[first], 0, atol=1e-5)


@pytest.mark.parametrize("postings_per_chunk", [1, 7, 50])
def test_chunks_of_query_postings_give_the_whole_tables_features(context, postings_per_chunk):
    whole = build_features(context).frame
    fresh = PairContext(context.candidates, context.postings, context.embeddings,
                        context.neighbours)
    parts = [build_features(chunk).frame for chunk in fresh.chunks(postings_per_chunk)]
    assert len(parts) > 1
    assert all(part["i"].n_unique() <= postings_per_chunk for part in parts)
    assert pl.concat(parts).equals(whole)


def test_chunks_of_an_empty_table(context):
    empty = PairContext(context.candidates.clear(), context.postings, context.embeddings,
                        context.neighbours)
    (only,) = empty.chunks(10)
    assert build_features(only).frame.height == 0


def test_unknown_group_is_refused(context):
    with pytest.raises(ValueError, match="unknown feature groups"):
        build_features(context, ["nope"])


def test_view_columns_are_those_a_missing_photo_empties(context):
    """With every photo hash missing, exactly the columns view_columns names turn NaN."""
    whole = build_features(context)
    phash = context.embeddings["phash"]
    hidden = dataclasses.replace(phash, missing=np.ones(len(phash), dtype=bool))
    blind = build_features(PairContext(context.candidates, context.postings,
                                       {**context.embeddings, "phash": hidden},
                                       context.neighbours))
    emptied = [c for c in whole.names
               if blind.frame[c].is_nan().all() and not whole.frame[c].is_nan().all()]
    assert emptied == view_columns(whole.names, context.embeddings, "image")
    assert {"phash_hamming", "fused_tfidf_phash", "fused_text_image"} <= set(emptied)
    kept = [c for c in whole.names if c not in emptied]
    assert blind.frame.select(kept).equals(whole.frame.select(kept))


def test_view_columns_of_a_dense_image_embedder():
    class View:
        def __init__(self, name, modality):
            self.name, self.modality = name, modality

    names = ["sim_tfidf", "sim_image", "rank_rev_image", "nb_image_mean1_i", "sim_max",
             "fused_tfidf_image", "fused_text_image", "nb_tfidf_char_gap1_j"]
    embedders = [View("tfidf", "text"), View("tfidf_char", "text"), View("image", "image")]
    assert view_columns(names, embedders) == ["sim_image", "rank_rev_image", "nb_image_mean1_i",
                                              "fused_tfidf_image", "fused_text_image"]
    assert view_columns(names, embedders[:2]) == []


def test_bridges_are_the_best_cosine_to_the_other_ends_photo_twins(context):
    from candidates.blocks import hash_block_pairs

    table = build_features(context, ["bridges"])
    emb = context.embeddings["phash"]
    a, b = hash_block_pairs(emb.vectors, emb.missing)
    twins = {r: set(b[a == r].tolist()) for r in np.unique(a)}
    assert twins, "the generated catalog should have near-identical photos"
    text = context.embeddings["tfidf"].vectors.toarray()
    got = table.frame["bridge_phash_tfidf"].to_numpy()
    count_i = table.frame["phash_twins_i"].to_numpy()
    for row, (i, j) in enumerate(zip(context.i, context.j)):
        sims = [text[j] @ text[t] for t in twins.get(i, ()) if t != j]
        sims += [text[i] @ text[t] for t in twins.get(j, ()) if t != i]
        if emb.missing[i] or emb.missing[j]:
            assert np.isnan(got[row])
        elif sims:
            assert got[row] == pytest.approx(max(sims), abs=1e-5)
        else:
            assert got[row] == 0
        assert count_i[row] == len(twins.get(i, ()))
    assert (got > 0).sum() > 0


def test_a_stock_photo_has_no_twins_to_bridge_through(context):
    """A hash shared by more postings than candidates.blocks.MAX_BLOCK is a stock photo: its
    twins are not looked up, so its postings' bridges are unknown (NaN), not "no twin" (0)."""
    from candidates.blocks import MAX_BLOCK

    emb = context.embeddings["phash"]
    stock = np.flatnonzero(~emb.missing)[:MAX_BLOCK + 1]
    hashes = emb.vectors.copy()
    hashes[stock] = hashes[stock[0]]
    ctx = PairContext(context.candidates, context.postings,
                      {**context.embeddings, "phash": dataclasses.replace(emb, vectors=hashes)},
                      context.neighbours)
    frame = build_features(ctx, ["bridges"]).frame
    touches = np.isin(ctx.i, stock) | np.isin(ctx.j, stock)
    assert touches.any() and (~touches).any()
    bridge = frame["bridge_phash_tfidf"].to_numpy()
    assert np.isnan(bridge[touches]).all() and np.isfinite(bridge[~touches]).any()
    count = frame["phash_twins_i"].to_numpy()
    assert np.isnan(count[np.isin(ctx.i, stock)]).all()
    assert np.isfinite(count[~np.isin(ctx.i, stock) & ~emb.missing[ctx.i]]).all()


def test_hash_block_sizes_count_postings_with_a_hash_only(context):
    """A missing hash is stored as 0: it must not join the block of a photo whose hash is 0."""
    emb = context.embeddings["phash"]
    hashes, missing = emb.vectors.copy(), np.zeros(len(emb.vectors), bool)
    hashes[:3] = 0          # one real photo hashed 0 …
    missing[1:3] = True     # … and two postings without a photo, stored as 0 too
    ctx = PairContext(context.candidates, context.postings,
                      {**context.embeddings,
                       "phash": dataclasses.replace(emb, vectors=hashes, missing=missing)},
                      context.neighbours)
    block = build_features(ctx, ["phash"]).frame
    rows = {0: 1.0, 1: np.nan, 2: np.nan}
    for row, size in rows.items():
        got = block["phash_block_i"].to_numpy()[ctx.i == row]
        assert len(got) and (np.isnan(got).all() if np.isnan(size) else (got == size).all())
