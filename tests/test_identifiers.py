"""The optional 'identifiers' feature group: model codes extracted, normalised and compared."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from candidates import build_candidates
from embedders import create_embedder, embed_catalog
from features import PairContext, build_features
from features.build import FEATURE_GROUPS
from features.identifiers import extract_codes

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
