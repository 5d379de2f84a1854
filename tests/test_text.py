"""Title clean-up: literal UTF-8 byte escapes decoded, accents folded by the sparse models,
decoded titles in reports, and the clean-up's version in every embedder's cache key."""
from __future__ import annotations

import numpy as np
import polars as pl

from common import text
from common.text import clean_titles, decode_escapes, display_titles
from embedders import create_embedder, embed_catalog


def titles(*values) -> pl.Series:
    return pl.Series("title", list(values), dtype=pl.String)


def test_escapes_spell_their_utf8_text():
    raw = titles(r"Nescafe \xc3\x89clair Latte 220ml", r"Lakm\xc3\xa9 Lipstick",
                 r"love \xe2\x9d\xa4 it", "plain title", None)
    assert decode_escapes(raw).to_list() == ["Nescafe Éclair Latte 220ml", "Lakmé Lipstick",
                                             "love ❤ it", "plain title", ""]
    assert clean_titles(raw) == ["nescafe éclair latte 220ml", "lakmé lipstick", "love ❤ it",
                                 "plain title", ""]


def test_bytes_that_are_not_utf8_become_a_space_and_lone_backslashes_stay():
    assert clean_titles(titles(r"bad \xff\xfe bytes", r"half \xc3 sequence",
                               r"C:\xyz not an escape")) == \
        ["bad bytes", "half sequence", r"c:\xyz not an escape"]


def test_reports_show_decoded_titles_with_their_case():
    assert display_titles(titles(r"Cr\xc3\xa8me &amp; Co")).to_list() == ["Crème & Co"]


def test_sparse_models_fold_accents_and_find_the_written_out_title(tmp_path):
    frame = pl.DataFrame({"posting_id": ["a", "b", "c"],
                          "title": [r"Nescafe \xc3\x89clair 220ml", "NESCAFE ECLAIR 220ML",
                                    "Teh Botol 350ml"]})
    for name in ("tfidf", "tfidf_char"):
        vectors = embed_catalog(create_embedder(name), frame, None).vectors
        dense = vectors.toarray() if hasattr(vectors, "toarray") else vectors
        np.testing.assert_allclose(dense[0], dense[1], atol=1e-6)  # one title, two spellings
    kept = create_embedder("tfidf", strip_accents=None)
    dense = embed_catalog(kept, frame, None).vectors.toarray()
    assert not np.allclose(dense[0], dense[1])  # "éclair" and "eclair" differ without folding


def test_a_new_clean_up_invalidates_cached_vectors(monkeypatch):
    embedder = create_embedder("tfidf")
    key = embedder.cache_key("postings")
    monkeypatch.setattr("embedders.base.CLEANUP_VERSION", text.CLEANUP_VERSION + 1)
    assert embedder.cache_key("postings") != key
