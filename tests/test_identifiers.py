"""Model codes: extracted and normalised, a candidate source (the 'codes' embedder) and the
optional 'identifiers' feature group."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from candidates import build_candidates
from candidates.blocks import shared_key_pairs
from common.codes import code_keys, extract_codes
from embedders import create_embedder, embed_catalog
from features import PairContext, build_features
from features.build import FEATURE_GROUPS

CASES = [
    ("Samsung QE55Q8DNA 55 inch QLED", ["qe55q8dna"]),
    ("samsung qe-55q8dn", ["qe55q8dn"]),
    ("Sony CNSL 3033 black", ["cnsl3033"]),
    ("CNSL-3033", ["cnsl3033"]),
    ("Galaxy SM-G950F/DS 64GB", ["smg950fds"]),     # 64gb is a quantity
    ("Serum 500ml 2.5kg 1080p", []),                 # quantities, not codes
    ("Kaos polos 3 warna", []),
    ("", []),
]


@pytest.mark.parametrize("title,codes", CASES)
def test_codes_are_found_whatever_the_case_and_separators(title, codes):
    found = extract_codes([title.lower()])
    assert found["code"].to_list() == codes


def test_extraction_is_vectorised_over_rows():
    found = extract_codes([c[0].lower() for c in CASES])
    assert found["row"].to_list() == [0, 1, 2, 3, 4]


def test_keys_add_the_catalogs_codes_that_begin_a_rows_code():
    codes = extract_codes(["samsung qe55q8dna", "samsung qe55q8dn", "qe55q7fna",
                           "abcd12345", "abcd1"])
    keys = code_keys(codes).group_by("row").agg("code").sort("row")["code"].to_list()
    # qe55q8dn (8 characters) begins qe55q8dna; abcd1 is shorter than 6, so not a prefix key
    assert [sorted(k) for k in keys] == [["qe55q8dn", "qe55q8dna"], ["qe55q8dn"], ["qe55q7fna"],
                                         ["abcd12345"], ["abcd1"]]


def test_codes_pair_postings_the_text_lists_miss_and_leave_out_big_blocks(caplog):
    titles = ["Samsung QE55Q8DNA 55 inch QLED smart tv", "qe-55q8dn",
              "Sony CNSL 3033 black", "cnsl3033 controller",
              "kaos polos hitam", "kaos polos putih"]
    postings = pl.DataFrame({"posting_id": [f"p{k}" for k in range(len(titles))],
                             "title": titles})
    codes = embed_catalog(create_embedder("codes"), postings, None)
    assert codes.kind == "blocks" and codes.missing.tolist() == [False] * 4 + [True] * 2
    words = embed_catalog(create_embedder("tfidf"), postings, None)
    without = build_candidates([words], k=1)
    with_codes = build_candidates([words, codes], k=1)
    pairs = set(zip(with_codes.table["i"].to_list(), with_codes.table["j"].to_list()))
    assert {(0, 1), (1, 0), (2, 3), (3, 2)} <= pairs
    assert (0, 1) not in set(zip(without.table["i"].to_list(), without.table["j"].to_list()))
    assert "sim_codes" not in with_codes.table.columns and "codes" not in with_codes.neighbours
    # a code on more postings than the bound is a series, not a product: not paired
    many = create_embedder("codes").embed(pl.DataFrame({"posting_id": [str(k) for k in range(60)],
                                                        "title": ["usb3000 cable"] * 60}))
    i, _ = shared_key_pairs(many.vectors, max_block=50)
    assert len(i) == 0 and "1 key blocks with more than 50 postings" in caplog.text


def test_codes_embeddings_are_cached(tmp_path):
    postings = pl.DataFrame({"posting_id": ["a", "b"], "title": ["cnsl 3033", "CNSL-3033 x"]})
    first = embed_catalog(create_embedder("codes"), postings, tmp_path)
    again = embed_catalog(create_embedder("codes"), postings, tmp_path)
    assert (again.vectors != first.vectors).nnz == 0 and again.kind == "blocks"
    assert (tmp_path / "codes" / "vectors.npz").is_file()


def frame_of(titles: list[str]) -> pl.DataFrame:
    postings = pl.DataFrame({"posting_id": [f"p{k}" for k in range(len(titles))],
                             "title": titles})
    emb = embed_catalog(create_embedder("tfidf"), postings, None)
    found = build_candidates([emb], k=len(titles) - 1)
    ctx = PairContext(found.table, postings, {"tfidf": emb}, found.neighbours)
    frame = build_features(ctx, ["identifiers"]).frame
    return {(a, b): row for a, b, *row in frame.select(
        "i", "j", "id_shared", "id_prefix", "id_conflict", "id_one_side",
        "id_distance").iter_rows()}


def test_pairs_share_conflict_or_extend_a_code():
    rows = frame_of(["Samsung TV QE55Q8DNA", "Samsung TV qe-55q8dn", "Samsung TV QE55Q7FNA",
                     "Samsung TV QE55Q8DNA black", "Samsung TV stand"])
    shared, prefix, conflict, one_side, distance = rows[(0, 3)]
    assert (shared, prefix, conflict, one_side, distance) == (1, 1, 0, 0, 0)  # a code begins itself
    shared, prefix, conflict, _, distance = rows[(0, 1)]     # a variant letter dropped
    assert (shared, prefix, conflict) == (0, 1, 0) and distance == pytest.approx(1 / 9)
    shared, prefix, conflict, _, _ = rows[(0, 2)]            # another model
    assert (shared, prefix, conflict) == (0, 0, 1)
    _, prefix, conflict, one_side, distance = rows[(0, 4)]   # no code on one side
    assert one_side == 1 and np.isnan(prefix) and np.isnan(conflict) and np.isnan(distance)
    assert rows[(1, 0)] == rows[(0, 1)]                      # symmetric


def test_identifiers_are_built_only_when_named():
    assert "identifiers" not in FEATURE_GROUPS


def test_the_character_model_can_see_codes_whole_across_separators():
    postings = pl.DataFrame({"posting_id": ["a", "b", "c"],
                             "title": ["Sony CNSL-3033 black", "sony cnsl 3033 black",
                                       "kaos polos hitam"]})
    for fold, same in ((True, True), (False, False)):
        embedder = create_embedder("tfidf", analyzer="char_wb", ngram_range=(3, 5),
                                   fold_codes=fold)
        vectors = embedder.embed(postings).vectors.toarray()
        assert np.allclose(vectors[0], vectors[1]) is same
    assert create_embedder("tfidf_char", fold_codes=True).get_config()["fold_codes"] is True
