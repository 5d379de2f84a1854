"""The candidates table: union of every embedder's top-K lists, the exact-hash blocks and the
shared-key blocks (model codes)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import polars as pl

from common.console import track
from common.pairs import key_positions, pair_keys, reverse_positions, split_keys, unique_keys

from .allocate import global_entries
from .blocks import hash_block_pairs, shared_key_pairs
from .bridges import bridge_keys
from .pairs import pair_similarity
from .search import find_neighbours


@dataclass
class Neighbours:
    """One embedder's searched list per posting: ``index`` and ``similarity``, n × depth, best
    first by the vectors searched (depth: k, or the global allocation's deeper search)."""

    index: np.ndarray
    similarity: np.ndarray


@dataclass
class CandidateSet:
    table: pl.DataFrame
    neighbours: dict[str, Neighbours]
    seconds: dict[str, float] = field(default_factory=dict)
    search: dict[str, dict] = field(default_factory=dict)  # per vector embedder: how it searched
    list_depth: int = 0  # how deep each list paired: k, or the bridges' list depth


def build_candidates(embeddings, k: int = 50, search: str = "exact",
                     find: Callable = find_neighbours, allocation: dict | None = None,
                     search_embeddings: list | None = None, bridges: dict | None = None,
                     list_depth: int | None = None) -> CandidateSet:
    """Candidate pairs from a list of :class:`embedders.Embedding`.

    ``search_embeddings`` (the same embedders' neighbour-blended vectors, in the same order)
    are searched instead where given: the lists and pairs come from them, ``sim_<name>`` and
    the lists' ``similarity`` stay the cosine of the embedder's own vectors, and the table
    adds the blended vectors' cosine as ``blend_sim_<name>``: the ranker reads both, since
    which tells a match apart better depends on the catalog.

    Dense and sparse embeddings contribute their neighbour lists (``search``: exact, ann or
    auto, see :func:`~candidates.search.find_neighbours`, or ``find``, which takes and returns
    the same, e.g. over query shards on a cluster): each posting's top ``k`` when
    ``allocation`` is None, else (``{"depth": D, "at_least": m}``, see
    :func:`~candidates.allocate.global_entries`) the k·n most similar entries of the whole
    catalog from each posting's top D, at least m per posting. Hash embeddings contribute their
    exact-equality blocks, blocks embeddings (model codes) the rows sharing a key. The union is
    closed under symmetry (if (i, j) is a candidate, so is (j, i)), sorted by (i, j), and
    carries per vector embedder ``sim_<name>`` (cosine for every pair; null where either row
    has no vector) and ``rank_<name>`` (1-based rank of j in i's list; null where j is not
    among the entries i's list contributed).

    ``bridges`` (see :func:`~candidates.bridges.bridge_spec`) adds the photo bridges of each
    hash embedding's links through every vector embedder's lists; where the catalog has links,
    the lists then pair only their first ``bridges["list_depth"]`` entries (at most k).
    ``list_depth`` fixes that depth instead (at most k): a model replays the depth of its
    training catalog's lists, so that its rank features never meet ranks it was not trained on
    (a catalog whose photos do not link, or a catalog without photos, matched by a model trained
    where they do). The depth used is the result's ``list_depth``.
    """
    n = len(embeddings[0])
    seconds: dict[str, float] = {}
    neighbours: dict[str, Neighbours] = {}
    searched: dict[str, dict] = {}
    kept: dict[str, np.ndarray | None] = {}
    listed: dict[str, np.ndarray] = {}  # each list's (row, neighbour) keys, for its rank column
    blended: dict[str, object] = {}
    keys = [np.empty(0, np.int64)]
    links = _photo_links(embeddings, bridges, seconds)
    if list_depth is None:
        list_depth = bridges["list_depth"] if links else k
    pairs_k = min(k, list_depth)
    for emb, searched_emb in track(list(zip(embeddings, search_embeddings or embeddings)),
                                   "neighbour search"):
        start = time.perf_counter()
        if emb.kind in ("hash", "blocks"):
            i, j = hash_block_pairs(emb.vectors, emb.missing) if emb.kind == "hash" \
                else shared_key_pairs(emb.vectors)
            keys.append(pair_keys(i, j, n))
        else:
            depth = allocation["depth"] if allocation else k
            index, sims, searched[emb.name] = find(searched_emb.vectors, depth, emb.missing,
                                                   search)
            if allocation:
                kept[emb.name] = global_entries(index, sims, pairs_k, allocation["at_least"])
            else:
                kept[emb.name] = None if pairs_k >= index.shape[1] \
                    else (index >= 0) & (np.arange(index.shape[1]) < pairs_k)
            if searched_emb is not emb:
                sims = _list_similarity(emb.vectors, index, sims)
                blended[emb.name] = searched_emb
            neighbours[emb.name] = Neighbours(index, sims)
            i, j = _list_pairs(index, kept[emb.name])
            listed[emb.name] = pair_keys(i, j, n)
            keys.extend([listed[emb.name], pair_keys(j, i, n)])
        seconds[f"search_{emb.name}"] = round(time.perf_counter() - start, 3)
    for name, (a, b) in links.items():
        start = time.perf_counter()
        keys.extend(bridge_keys(a, b, lists.index, bridges["out"], bridges["in"])
                    for lists in neighbours.values())
        seconds[f"bridges_{name}"] += round(time.perf_counter() - start, 3)

    start = time.perf_counter()
    keys = unique_keys(np.concatenate(keys))
    i, j = (half.astype(np.int32) for half in split_keys(keys, n))
    columns: dict[str, pl.Series] = {"i": pl.Series("i", i), "j": pl.Series("j", j)}
    for emb in embeddings:
        if emb.kind in ("hash", "blocks"):
            continue
        no_vector = emb.missing[i] | emb.missing[j]
        columns[f"sim_{emb.name}"] = _similarity_column(f"sim_{emb.name}", emb.vectors, i, j,
                                                        no_vector)
        columns[f"rank_{emb.name}"] = _rank_column(f"rank_{emb.name}", neighbours[emb.name],
                                                   kept[emb.name], listed[emb.name], keys)
        if emb.name in blended:
            columns[f"blend_sim_{emb.name}"] = _similarity_column(
                f"blend_sim_{emb.name}", blended[emb.name].vectors, i, j, no_vector)
    seconds["union"] = round(time.perf_counter() - start, 3)
    return CandidateSet(pl.DataFrame(list(columns.values())), neighbours, seconds, searched,
                        pairs_k)


def _photo_links(embeddings, bridges: dict | None, seconds: dict
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each hash embedding's photo links where ``bridges`` asks for them and it has any."""
    links = {}
    for emb in embeddings if bridges else []:
        if emb.kind == "hash":
            start = time.perf_counter()
            a, b = hash_block_pairs(emb.vectors, emb.missing, radius=bridges["radius"])
            seconds[f"bridges_{emb.name}"] = round(time.perf_counter() - start, 3)
            if len(a):
                links[emb.name] = (a, b)
    return links


def _list_pairs(index: np.ndarray, kept: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(row, neighbour) of the list entries that are pairs: every valid one, or ``kept``."""
    rows = np.repeat(np.arange(index.shape[0], dtype=np.int64), index.shape[1])
    cols = index.ravel()
    valid = (cols >= 0) if kept is None else kept.ravel()
    return rows[valid], cols[valid]


def _similarity_column(name: str, vectors, i: np.ndarray, j: np.ndarray,
                       no_vector: np.ndarray) -> pl.Series:
    """The pairs' cosines, null where either end has no vector."""
    column = pl.Series(name, pair_similarity(vectors, i, j))
    return column.set(pl.Series(no_vector), None) if no_vector.any() else column


def _list_similarity(vectors, index: np.ndarray, searched: np.ndarray) -> np.ndarray:
    """The cosine of each list entry by ``vectors`` (``searched``'s value past a list's end)."""
    valid = index >= 0
    out = searched.copy()
    out[valid] = pair_similarity(vectors, np.nonzero(valid)[0], index[valid])
    return out


def _rank_column(name: str, lists: Neighbours, kept: np.ndarray | None, listed: np.ndarray,
                 keys: np.ndarray) -> pl.Series:
    """``listed``: the keys of the list's (row, neighbour) pairs, in the order
    :func:`_list_pairs` gives them (row-major, as the ranks below)."""
    ranks = (np.nonzero(lists.index >= 0 if kept is None else kept)[1] + 1).astype(np.int16)
    position = key_positions(keys, listed)  # every listed pair is among the keys
    out = np.zeros(len(keys), dtype=np.int16)
    out[position] = ranks
    return pl.Series(name, out).replace(0, None)


def candidate_recall(i: np.ndarray, j: np.ndarray, labels: np.ndarray) -> float:
    """Share of true ordered pairs (i ≠ j, same label) that are among the candidates."""
    sizes = np.bincount(labels)[labels]
    total = int((sizes - 1).sum())
    return float((labels[i] == labels[j]).sum() / total) if total else 1.0


def recall_by_source(table: pl.DataFrame, labels: np.ndarray) -> dict[str, float]:
    """Candidate recall of the whole table (``all``) and of each vector embedder's lists (pairs
    where either end lists the other)."""
    i = table["i"].to_numpy().astype(np.int64)
    j = table["j"].to_numpy().astype(np.int64)
    out = {"all": round(candidate_recall(i, j, labels), 6)}
    reverse = np.maximum(reverse_positions(i, j, len(labels)), 0)
    for column in table.columns:
        if column.startswith("rank_"):
            listed = table[column].is_not_null().to_numpy()
            either = listed | listed[reverse]
            out[column[len("rank_"):]] = round(candidate_recall(i[either], j[either], labels), 6)
    return out
