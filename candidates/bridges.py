"""Photo bridges: candidate pairs through a near-identical photo.

A product posted 40 times is titled 40 ways, and a posting's text list reaches the titles worded
like its own. Two postings whose perceptual hashes are at most ``radius`` bits apart show the
same photo (a link); the linked posting's lists reach other wordings. For a link (a, b) and each
vector embedder's list, a bridge pairs a with b's best ``out`` neighbours and with the postings
that list b among their best ``in``.

The bridges take the place of the lists' tail: where a catalog has links, each list pairs only
its first ``list_depth`` entries. On Shopee train (TF-IDF word and character lists, 8-bit
links, out 5, in 20), lists 41 deep with the bridges reach a candidate recall of 0.950 at 119.5
pairs per posting, against 0.932 at 116.9 for 50-deep lists alone (README, "Candidate lists").
A catalog without photos (or without two alike) has no links and keeps its whole lists.

Links come from :func:`~candidates.blocks.hash_block_pairs`: at 8 bits its 7-bit pigeonhole
segments are shared by ~n / 128 hashes, so from a few tens of thousands of distinct hashes on the
busiest segment values exceed the block bound and are not joined; links are then found through
the other segments only, and on millions of postings through equal hashes only.
"""
from __future__ import annotations

import numpy as np

from common.pairs import pair_keys, row_entries, row_pointers


BRIDGE_RADIUS = 8
BRIDGE_OUT = 5
BRIDGE_IN = 20
BRIDGE_LIST_DEPTH = 41


def bridge_spec(out: int, into: int, list_depth: int) -> dict | None:
    """The bridges as plain data for the search and the model: None when off (no ``out`` and
    no ``into`` neighbours), else ``{"radius", "out", "in", "list_depth"}``."""
    if out < 0 or into < 0 or list_depth < 1:
        raise ValueError("bridge depths must be at least 0 and the list depth at least 1")
    if not out and not into:
        return None
    return {"radius": BRIDGE_RADIUS, "out": int(out), "in": int(into),
            "list_depth": int(list_depth)}


def bridge_keys(a: np.ndarray, b: np.ndarray, index: np.ndarray, out: int, into: int
                ) -> np.ndarray:
    """Keys (i·n + j, see :func:`common.pairs.pair_keys`) of the bridge pairs of links (a, b)
    through one embedder's lists ``index`` (n × depth, -1 past a row's end), both ways: a with
    b's best ``out`` neighbours, and a with every posting whose best ``into`` list b."""
    n = len(index)
    keys = [np.empty(0, np.int64)]
    if out:
        rows = np.repeat(a, min(out, index.shape[1]))
        cols = index[b, :out].ravel().astype(np.int64)
        valid = (cols >= 0) & (cols != rows)
        keys += [pair_keys(rows[valid], cols[valid], n), pair_keys(cols[valid], rows[valid], n)]
    if into:
        head = index[:, :into]
        valid = head >= 0
        listed = head[valid].astype(np.int64)
        order = np.argsort(listed, kind="stable")
        listers = np.nonzero(valid)[0][order]  # grouped by the posting they list
        owner, position = row_entries(row_pointers(listed[order], n), b)
        rows, cols = listers[position], a[owner]
        valid = rows != cols
        keys += [pair_keys(rows[valid], cols[valid], n), pair_keys(cols[valid], rows[valid], n)]
    return np.concatenate(keys)
