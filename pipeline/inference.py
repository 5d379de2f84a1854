"""Matching a new catalog with a fitted bundle: candidates, filter, features, both stages'
scores, post-processing, the submission table."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from common.console import Timer
from common.pairs import find_pairs
from postprocess import to_submission
from ranker import predict_second_stage, score_shift

from .bundle import ModelBundle
from .coverage import coverage, coverage_gaps
from .distributed import score_on
from .stages import Candidates, kept_by_filter, pair_arrays
from .transfer import choose_processor, differences, with_sole_code_pairs


@dataclass
class Matching:
    """The outcome of matching one catalog: every scored pair (``i``, ``j``, ``p``, ``kept``:
    in the final match sets), the submission table, and the counts and how each vector
    embedder searched (``search``: method and index parameters) for ``submit.json``."""

    pairs: pl.DataFrame
    submission: pl.DataFrame
    candidate_pairs: int
    seconds: dict
    search: dict = field(default_factory=dict)
    score_shift: float | None = None  # from the training scores (ranker.score_shift)
    coverage: dict = field(default_factory=dict)  # per embedder (pipeline.coverage)
    coverage_gaps: dict = field(default_factory=dict)  # those far from training's
    differences: list = field(default_factory=list)  # from training (pipeline.transfer)
    adapted: bool = False  # matched with the conservative post-processing, not the saved one
    sole_code_pairs: int = 0  # scored pairs of sole code holders (pipeline.transfer)


def score_pairs(bundle: ModelBundle, candidates: Candidates, timer: Timer,
                chunk_size: int | None = None,
                client=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p(match) of every pair of ``candidates.table`` (the pairs the filter kept), by the last
    stage of ``bundle``, with the pairs' ends ``i``, ``j`` (int32).

    The features and the first stage run over chunks of ``chunk_size`` query postings (all at
    once by default), so the features held at once follow the chunk, not the catalog; the
    second stage reads the first stage's feature blocks back from a temporary folder where
    there is more than one chunk. Without a Dask ``client``, ``candidates`` is used up: only
    its postings are left once the first stage has scored every pair
    (:meth:`Candidates.let_go_of_pairs`). With a ``client`` the chunks are tasks on its
    cluster (:mod:`pipeline.distributed`), with the same results.
    """
    ranker, second = bundle.ranker, bundle.second
    ctx = candidates.context(candidates.table)
    i, j, n = ctx.table_i, ctx.table_j, ctx.n
    if client is not None:
        return i, j, score_on(client, bundle, ctx, timer, chunk_size)
    first = [np.empty(0, np.float32)]
    with FeatureBlocks(spill=second is not None
                       and len(ctx.chunk_rows(chunk_size)) > 1) as blocks:
        for chunk in ctx.chunks(chunk_size):
            with timer.step("features"):
                features = bundle.first_stage_features(chunk)
            with timer.step("score"):
                for block in features.row_blocks(ranker.feature_names_):
                    first.append(ranker.predict(block))
                    if second is not None:
                        blocks.add(block)
            del features, chunk
        # The second stage and post-processing, the next peaks of memory, need none of the
        # pair table, the vectors, the neighbour lists and the values the features shared (at
        # a million postings, about 4 GiB of them).
        i, j = i.copy(), j.copy()
        del ctx
        candidates.let_go_of_pairs()
        p = np.concatenate(first)
        del first
        if second is not None:
            with timer.step("second_stage"):
                p = predict_second_stage(second, blocks, p, i, j, n)
    return i, j, p


class FeatureBlocks:
    """The first stage's feature blocks, kept for the second stage: in memory, or (``spill``)
    as .npy files in a temporary folder (under ``TMPDIR``) that is removed on exit."""

    def __init__(self, spill: bool):
        self.spill = spill
        self.blocks: list = []

    def __enter__(self) -> FeatureBlocks:
        self.folder = tempfile.TemporaryDirectory(prefix="listing-matcher-") if self.spill \
            else None
        return self

    def __exit__(self, *exc) -> None:
        self.blocks.clear()
        if self.folder is not None:
            self.folder.cleanup()

    def add(self, block: np.ndarray) -> None:
        if self.folder is None:
            self.blocks.append(block)
            return
        path = Path(self.folder.name) / f"{len(self.blocks)}.npy"
        np.save(path, block)
        self.blocks.append(path)

    def __iter__(self):
        for block in self.blocks:
            yield np.load(block) if isinstance(block, Path) else block


def match(bundle: ModelBundle, candidates: Candidates, timer: Timer,
          chunk_size: int | None = None, client=None, adapt: str = "auto") -> Matching:
    """Score a catalog's candidates (the filter over every candidate pair, then the kept ones
    over chunks of ``chunk_size`` query postings; tasks on a Dask ``client``'s cluster),
    post-process them (``adapt``: with the conservative post-processing where the catalog is
    unlike the training one; see :mod:`pipeline.transfer`) and tabulate the match sets.
    ``candidates`` is used up, so that what a stage no longer needs is let go: its table is
    replaced by the pairs the filter keeps (the whole candidate table is 2 GiB and more at a
    million postings), and its pairs, vectors and neighbour lists are dropped before the second
    stage."""
    candidate_pairs = candidates.table.height
    shares = coverage(candidates.embeddings)
    gaps = coverage_gaps(bundle.coverage, shares)
    if bundle.pair_filter is not None:
        candidates.table = kept_by_filter(candidates, bundle, timer, chunk_size, client)
    i, j, p = score_pairs(bundle, candidates, timer, chunk_size, client)
    n = candidates.postings.height
    shift = score_shift(bundle.score_quantiles or [], p)
    found = differences(shift, len(p), gaps)
    processor, adapted = choose_processor(bundle.processor, found, adapt)
    with timer.step("postprocess"):
        kept_i, kept_j, kept_score = processor.predict(i, j, p, n)
        held = 0
        if adapted:
            (kept_i, kept_j, kept_score), held = with_sole_code_pairs(
                (kept_i, kept_j, kept_score), i, j, p, n, candidates.postings["title"],
                processor.symmetrise)
        submission = to_submission(candidates.postings["posting_id"], kept_i, kept_j, kept_score)
    kept = np.zeros(len(i), dtype=bool)
    position = find_pairs(i, j, kept_i, kept_j, n)
    kept[position[position >= 0]] = True
    pairs = pl.DataFrame({"i": i.astype(np.int32), "j": j.astype(np.int32), "p": p,
                          "kept": kept})
    return Matching(pairs, submission, candidate_pairs, timer.seconds, score_shift=shift,
                    coverage=shares, coverage_gaps=gaps, differences=found, adapted=adapted,
                    sole_code_pairs=held)
