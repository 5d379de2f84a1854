"""The 'source' feature group: which shop or feed each posting came from, where it says."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from candidates import build_candidates
from embedders import create_embedder, embed_catalog
from features import FEATURE_GROUPS, PairContext, build_features
from features.source import source_codes

TITLES = ["sony bravia tv kdl40 black", "sony bravia tv kdl40 black edition",
          "sony bravia television kdl40", "bose speaker am5", "bose speaker am5 white",
          "bose acoustimass speaker am5"]


def context(sources: list[str | None] | None) -> PairContext:
    postings = pl.DataFrame({"posting_id": [f"p{k}" for k in range(len(TITLES))],
                             "title": TITLES})
    if sources is not None:
        postings = postings.with_columns(pl.Series("source", sources, dtype=pl.String))
    emb = embed_catalog(create_embedder("tfidf"), postings, None)
    found = build_candidates([emb], k=len(TITLES) - 1)
    return PairContext(found.table, postings, {"tfidf": emb}, found.neighbours)


def rows(ctx: PairContext) -> dict[tuple[int, int], tuple]:
    frame = build_features(ctx, ["source"]).frame
    return {(a, b): tuple(rest) for a, b, *rest in frame.select(
        "i", "j", "same_source", "source_rank_tfidf", "source_rank_rev_tfidf").iter_rows()}


def test_a_near_copy_from_the_same_shop_does_not_outrank_the_other_shops_offer():
    ctx = context(["abt", "abt", "buy", "abt", "abt", "buy"])
    by_pair = rows(ctx)
    sim = {(a, b): s for a, b, s in ctx.candidates.select("i", "j", "sim_tfidf").iter_rows()}
    assert sim[(0, 1)] > sim[(0, 2)]              # the same shop's copy is the closer title,
    assert by_pair[(0, 1)][:2] == (1, 1)          # same source, first of that shop's candidates
    assert by_pair[(0, 2)][:2] == (0, 1)          # and the other shop's offer first of its own
    # the reverse rank is the rank of the reverse pair
    for (a, b), (_, rank, rank_rev) in by_pair.items():
        assert rank_rev == by_pair[(b, a)][1]
    # ranks count within (query, candidate's source): each query has one rank 1 per source
    frame = build_features(ctx, ["source"]).frame.with_columns(
        pl.Series("source_j", np.array(["abt", "abt", "buy", "abt", "abt", "buy"])[ctx.j]))
    firsts = frame.filter(pl.col("source_rank_tfidf") == 1).group_by("i", "source_j").len()
    assert firsts.height == frame.select("i", "source_j").unique().height


def test_postings_without_a_source_get_missing_values_in_the_same_columns():
    named = build_features(context(["a", "b", "a", "b", "a", "b"]), ["source"])
    for sources in (None, [None, " ", "", None, None, None]):
        table = build_features(context(sources), ["source"])
        assert table.names == named.names
        assert all(table.frame[c].is_nan().all() for c in table.names)
    partly = rows(context(["a", None, "b", "b", " ", "b"]))
    assert np.isnan(partly[(0, 1)][0]) and np.isnan(partly[(0, 1)][1])
    assert np.isnan(partly[(3, 4)][0]) and np.isnan(partly[(3, 4)][1])
    assert partly[(0, 2)][0] == 0 and partly[(3, 5)][0] == 1
    assert "source" in FEATURE_GROUPS


def test_source_codes_fold_blanks_and_surrounding_space():
    postings = pl.DataFrame({"posting_id": list("abcd"), "title": list("wxyz"),
                             "source": ["shop", " shop ", None, ""]})
    codes = source_codes(postings)
    assert codes[0] == codes[1] >= 0 and codes[2] == codes[3] == -1
    assert source_codes(postings.drop("source")) is None


@pytest.mark.parametrize("postings_per_chunk", [1, 4])
def test_chunks_give_the_whole_tables_source_features(postings_per_chunk):
    ctx = context(["abt", "abt", "buy", "abt", "buy", "buy"])
    whole = build_features(ctx, ["source"]).frame
    parts = [build_features(chunk, ["source"]).frame for chunk in ctx.chunks(postings_per_chunk)]
    assert pl.concat(parts).equals(whole)
