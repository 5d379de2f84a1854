"""Group 'tokens': rarity-weighted shared and unshared words, against a plain-Python reading."""
from __future__ import annotations

import math
import re

import numpy as np
import polars as pl
import pytest

from candidates import build_candidates
from datasets import generate_catalog
from embedders import create_embedder, embed_catalog
from features import PairContext, build_features
from features.tokens import FEATURES

TITLES = ["Kopi Kapal Api MERAH 100g", "kopi kapal api biru 100g",
          "Kopi kapal api merah 100g isi 10", "", "Teh Botol Sosro 350ml"]


def _expected(titles: list[str], a: int, b: int) -> dict[str, float]:
    """The five features of pair (a, b), read with sets and a loop."""
    words = [set(re.findall(r"\b\w+\b", t.lower())) for t in titles]
    n = len(titles)
    idf = {w: math.log((1 + n) / (1 + sum(w in ws for ws in words))) + 1
           for w in set().union(*words)}
    rarity = {w: (v - 1) / math.log((1 + n) / 2) for w, v in idf.items()}
    if not words[a] or not words[b]:
        return dict.fromkeys(FEATURES, math.nan)
    shared, only_a, only_b = words[a] & words[b], words[a] - words[b], words[b] - words[a]
    top_a = max((rarity[w] for w in only_a), default=0.0)
    top_b = max((rarity[w] for w in only_b), default=0.0)
    return {"tokens_idf_jaccard": sum(idf[w] for w in shared)
            / sum(idf[w] for w in words[a] | words[b]),
            "tokens_shared_rarity": max((rarity[w] for w in shared), default=0.0),
            "tokens_only_rarity": max(top_a, top_b),
            "tokens_only_rarity_both": min(top_a, top_b),
            "tokens_only_count": len(only_a) + len(only_b)}


def _all_pairs(n: int) -> pl.DataFrame:
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    return pl.DataFrame({"i": i, "j": j})


def test_features_match_a_plain_reading_of_the_titles():
    postings = pl.DataFrame({"posting_id": [str(x) for x in range(len(TITLES))],
                             "title": TITLES})
    pairs = _all_pairs(len(TITLES))
    frame = build_features(PairContext(pairs, postings), ["tokens"]).frame
    for row in frame.iter_rows(named=True):
        expected = _expected(TITLES, row["i"], row["j"])
        for name in FEATURES:
            assert row[name] == pytest.approx(expected[name], rel=1e-5, nan_ok=True), \
                (row["i"], row["j"], name)


def test_variants_differ_on_both_sides_and_a_longer_title_on_one():
    postings = pl.DataFrame({"posting_id": ["a", "b", "c"], "title": TITLES[:3]})
    frame = build_features(PairContext(_all_pairs(3), postings), ["tokens"]).frame
    both = dict(zip(zip(frame["i"], frame["j"]), frame["tokens_only_rarity_both"]))
    assert both[(0, 1)] > 0      # merah / biru: each names a word the other lacks
    assert both[(0, 2)] == 0     # the same product with "isi 10" added on one side
    assert both[(1, 0)] == both[(0, 1)]


@pytest.mark.parametrize("n", [3, 300])
def test_rarities_do_not_move_with_the_catalogs_size(n):
    # a word of one title is 1 and a word of every title 0, at any catalog size (a model
    # trained on one catalog is applied to others)
    titles = ["kopi merah", "kopi biru"] + [f"kopi x{k}" for k in range(n - 2)]
    postings = pl.DataFrame({"posting_id": [str(k) for k in range(n)], "title": titles})
    pairs = pl.DataFrame({"i": [0, 1], "j": [1, 0]})
    row = build_features(PairContext(pairs, postings), ["tokens"]).frame.row(0, named=True)
    assert row["tokens_only_rarity_both"] == pytest.approx(1.0)
    assert row["tokens_only_rarity"] == pytest.approx(1.0)
    assert row["tokens_shared_rarity"] == 0.0
    assert row["tokens_only_count"] == 2


def test_chunks_give_the_whole_tables_values():
    postings = generate_catalog(n_products=60, seed=5)
    found = build_candidates([embed_catalog(create_embedder("tfidf"), postings, None)], k=8)
    whole = build_features(PairContext(found.table, postings), ["tokens"]).frame
    fresh = PairContext(found.table, postings)
    parts = [build_features(chunk, ["tokens"]).frame for chunk in fresh.chunks(9)]
    assert len(parts) > 1
    assert pl.concat(parts).equals(whole)
    assert whole["tokens_idf_jaccard"].is_between(0, 1).all()
