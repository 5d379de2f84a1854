"""The matcher's chunked work as Dask tasks, on a ``dask.distributed`` cluster
(``Matcher(client=...)``, ``--scheduler ADDRESS|local:N``).

What one process runs over chunks runs here as one task per chunk: TF-IDF's term counting and
per-posting embedders (phash) over chunks of postings, the exact neighbour search over shards
of query rows against every vector, and over chunks of query postings the filter's scores,
the features and first-stage scores, the second-stage scores and the training features. The
inputs every task reads (vectors, the pair context: candidates, postings, embeddings,
neighbours; the models; the score graph) are scattered to every worker once, and each task is
a pure function of them and its rows: a task lost with its worker is run again by Dask on
another, and the results equal a single-process run's. The first stage's feature blocks stay
on the workers, as futures, until the second stage has read them. What joins the chunks (the
vocabulary and weights, the filter's symmetric decision, the score graph, post-processing)
runs in this process. Dask is imported here only, and only when a client is given.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import polars as pl

from candidates import find_neighbours, query_shards
from candidates.search import search_method
from common.console import Timer
from embedders import Embedder, Embedding
from embedders.tfidf import TfidfEmbedder, count_terms, merge_counts
from features import FeatureTable, PairContext, ScoreGraph, build_features
from ranker import second_stage_rows

from .settings import ParameterError

log = logging.getLogger(__name__)

LOCAL = "local:"
# How long a local cluster may take to register its workers (minutes on a loaded machine).
WORKER_START_TIMEOUT = 300


@contextlib.contextmanager
def open_client(scheduler: str | None) -> Iterator:
    """A ``distributed.Client`` of ``scheduler``, closed on exit: a scheduler's address, or
    ``local:N`` (a ``LocalCluster`` of N worker processes on this machine, closed with it);
    None where ``scheduler`` is None (the work stays in this process)."""
    if scheduler is None:
        yield None
        return
    workers = scheduler[len(LOCAL):] if scheduler.startswith(LOCAL) else None
    if workers is not None and not (workers.isdigit() and int(workers) >= 1):
        raise ParameterError("scheduler", "must be a scheduler address or local:N (N ≥ 1)")
    from distributed import Client

    if workers is None:
        with Client(scheduler) as client:
            yield client
        return
    with local_cluster(int(workers)) as cluster, Client(cluster) as client:
        # Every worker registered before any work: the rankers' row blocks follow the workers,
        # and a slow machine can still be starting one when the first task is sent.
        client.wait_for_workers(int(workers), timeout=WORKER_START_TIMEOUT)
        log.info(f"a LocalCluster of {workers} worker processes at {cluster.scheduler_address}")
        yield client


@contextlib.contextmanager
def local_cluster(workers: int, **options) -> Iterator:
    """A ``distributed.LocalCluster`` of ``workers`` processes (``options``: its other
    arguments; by default the cores are shared out among the workers), closed on exit, after
    which this process's environment is what it was. Starting the workers sets
    OMP_NUM_THREADS=1, PYTHONHASHSEED and others in this process's environment for good, so
    every process started afterwards (a command run from Python, a test's) would run its
    OpenMP loops on one thread, and LightGBM's trees depend on the thread count."""
    from distributed import LocalCluster

    environment = dict(os.environ)
    try:
        with LocalCluster(n_workers=workers, processes=True, dashboard_address=None,
                          **options) as cluster:
            yield cluster
    finally:
        os.environ.clear()
        os.environ.update(environment)


def worker_count(client) -> int:
    """Workers the scheduler knows, after waiting for the first one."""
    client.wait_for_workers(1)
    return len(client.scheduler_info()["workers"])


def task_rows(client, ctx: PairContext, chunk_size: int | None) -> list[tuple[int, int]]:
    """Row ranges of one task each: chunks of ``chunk_size`` query postings at most, and at
    least one per worker."""
    per_worker = math.ceil(ctx.n / worker_count(client))
    return ctx.chunk_rows(min(chunk_size or ctx.n, per_worker))


def share(client, value):
    """``value`` on every worker (a future that tasks take as an argument); the same future
    when it is one already, None for None."""
    from distributed import Future

    if value is None or isinstance(value, Future):
        return value
    return client.scatter(value, broadcast=True, hash=False)


def embed_on(client) -> Callable:
    """``compute`` for :func:`embedders.embed_catalog`: TF-IDF's counting pass as one task per
    chunk of titles (the vocabulary and weights are then fitted here, on the joined counts), a
    per-posting embedder as one task per chunk of postings; the others in this process. The
    vectors are the same as one process's."""
    def compute(embedder: Embedder, postings: pl.DataFrame, images: Path | None) -> Embedding:
        per_task = math.ceil(postings.height / worker_count(client))
        spans = [(start, min(per_task, postings.height - start))
                 for start in range(0, postings.height, max(per_task, 1))]
        if isinstance(embedder, TfidfEmbedder):
            parts = [client.submit(count_terms, embedder, postings["title"].slice(*span),
                                   pure=False) for span in spans]
            return embedder.embed(postings, images, counts=merge_counts(client.gather(parts)))
        if embedder.per_posting and spans:
            parts = [client.submit(embedder.embed, postings.slice(*span), images, pure=False)
                     for span in spans]
            return Embedding.stack(client.gather(parts))
        return embedder.embed(postings, images)
    return compute


def neighbours_on(client) -> Callable:
    """``find`` for :func:`candidates.build_candidates`: an exact search as one task per shard
    of query rows (:func:`candidates.query_shards`) against every vector, the lists joined in
    row order (the same lists); an approximate search in this process (its index is one
    structure built from every vector)."""
    def find(vectors, k: int, missing: np.ndarray | None, method: str):
        if search_method(method, vectors) != "exact":
            return find_neighbours(vectors, k, missing, method)
        every, holes = share(client, vectors), share(client, missing)
        parts = client.gather([client.submit(find_neighbours, every, k, holes, "exact", None,
                                             span)
                               for span in query_shards(vectors, worker_count(client))])
        return (np.concatenate([part[0] for part in parts]),
                np.concatenate([part[1] for part in parts]), parts[0][2])
    return find


def map_chunks(client, task: Callable, ctx: PairContext, rows: list[tuple[int, int]],
               *shared) -> list:
    """Futures of ``task(ctx, *shared, rows)`` for each row range, ``ctx`` and ``shared``
    scattered once."""
    ctx, *shared = (share(client, value) for value in (ctx, *shared))
    return [client.submit(task, ctx, *shared, span) for span in rows]


def _features(ctx: PairContext, groups: list[str] | None, rows) -> FeatureTable:
    return build_features(ctx.chunk(*rows), groups)


def _filter_scores(ctx: PairContext, bundle, rows) -> np.ndarray:
    return bundle.filter_scores(ctx.chunk(*rows))


def _first_stage_block(ctx: PairContext, bundle, rows) -> np.ndarray:
    features = bundle.first_stage_features(ctx.chunk(*rows))
    return features.matrix(bundle.ranker.feature_names_)


def _first_stage_scores(bundle, block: np.ndarray) -> np.ndarray:
    return bundle.ranker.predict(block)


def _second_stage_scores(bundle, block: np.ndarray, graph: ScoreGraph, start: int) -> np.ndarray:
    return second_stage_rows(bundle.second, block, graph, start)


def build_features_on(client, ctx: PairContext, groups: list[str] | None,
                      chunk_size: int | None = None) -> FeatureTable:
    """:func:`features.build_features` of ``ctx``'s pairs, one task per chunk, gathered into
    one table (equal to the single-process one)."""
    tables = client.gather(map_chunks(client, _features, ctx, task_rows(client, ctx, chunk_size),
                                      groups))
    seconds: dict[str, float] = {}
    for table in tables:
        for group, value in table.seconds.items():
            seconds[group] = round(seconds.get(group, 0.0) + value, 3)
    return FeatureTable(pl.concat([t.frame for t in tables]), tables[0].groups, seconds)


def filter_scores_on(client, ctx: PairContext, bundle,
                     chunk_size: int | None = None) -> np.ndarray:
    """The first-pass filter's scores of every pair of ``ctx``, one task per chunk."""
    futures = map_chunks(client, _filter_scores, ctx, task_rows(client, ctx, chunk_size),
                         bundle)
    return np.concatenate([np.empty(0, np.float32), *client.gather(futures)])


def score_on(client, bundle, ctx: PairContext, timer: Timer,
             chunk_size: int | None = None) -> np.ndarray:
    """The last stage's p(match) of every pair of ``ctx`` (the filter's kept table): features
    and first-stage scores per chunk, then the second stage per chunk from the feature blocks
    the workers kept."""
    rows = task_rows(client, ctx, chunk_size)
    model = share(client, bundle)
    with timer.step("first_stage"):
        blocks = map_chunks(client, _first_stage_block, ctx, rows, model)
        first = client.gather([client.submit(_first_stage_scores, model, block)
                               for block in blocks])
        p = np.concatenate([np.empty(0, np.float32), *first])
    if bundle.second is None:
        return p
    with timer.step("second_stage"):
        graph = share(client, ScoreGraph(ctx.table_i, ctx.table_j, p, ctx.n))
        futures = [client.submit(_second_stage_scores, model, block, graph, start)
                   for block, (start, _) in zip(blocks, rows)]
        return np.concatenate([np.empty(0, np.float32), *client.gather(futures)])
