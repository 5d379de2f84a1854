"""The steps that training and matching share: embed, search, the pair context, the filter.

Each takes tables and arrays and returns them; the work directory (when there is one) only
caches the embeddings and receives the artifacts.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from candidates import (CandidateSet, blend_neighbours, build_candidates, find_neighbours,
                        load_neighbours)
from common.atomic import digest, read_json, read_parquet
from common.console import Timer
from common.errors import InputError
from common.postings import fingerprint
from common.workdir import WorkDir
from embedders import Embedding, create_embedder, embed_catalog, is_learned
from features import PairContext

from .distributed import embed_on, filter_scores_on, neighbours_on
from .settings import spec_params

log = logging.getLogger(__name__)


@dataclass
class Candidates:
    """What the candidate stage hands on: the postings, their vectors, the pair table and the
    embedders' neighbour lists, with the settings and figures of ``candidates.json``."""

    postings: pl.DataFrame
    embeddings: list[Embedding]
    table: pl.DataFrame
    neighbours: dict
    report: dict = field(default_factory=dict)

    @property
    def specs(self) -> list[dict]:
        return self.report["embedders"]

    @classmethod
    def load(cls, root: str | Path, timer: Timer | None = None) -> Candidates:
        """What ``candidates`` wrote into a work directory; the vectors come from its
        embeddings cache (recomputed where the cache is gone or stale)."""
        work = WorkDir(root)
        report = read_json(work.candidates_report, "candidates")
        if not (isinstance(report, dict) and isinstance(report.get("embedders"), list)
                and isinstance(report.get("k"), int)):
            raise InputError("not a candidates report; rerun `python cli.py candidates`",
                             file=str(work.candidates_report))
        postings = read_parquet(work.postings, "candidates")
        table = read_parquet(work.candidates, "candidates", ("i", "j"))
        check_provenance(work, report, postings, table)
        specs = report["embedders"]
        vector_names = [s["name"] for s in specs if f"rank_{s['name']}" in table.columns]
        neighbours = load_neighbours(work.neighbours, vector_names)
        for name, lists in neighbours.items():
            if lists.index.shape[0] != postings.height:
                raise InputError(f"{lists.index.shape[0]} rows, not one per posting "
                                 f"({postings.height}); rerun `python cli.py candidates`",
                                 file=str(work.neighbours / f"{name}.index.npy"))
        images = Path(report["images"]) if report.get("images") else None
        embeddings = embed(postings, specs, work.embeddings, images, timer or Timer())
        return cls(postings, embeddings, table, neighbours, report)

    def let_go_of_pairs(self) -> None:
        """Drop the pair table, the vectors and the neighbour lists, keeping the postings:
        matching a catalog calls it once the first stage has scored every pair."""
        self.table = self.table.clear()
        self.embeddings = []
        self.neighbours = {}

    def fitted_specs(self) -> list[dict]:
        """The embedder specs a model trained on these candidates records: a learned
        embedder's checkpoint is the all-rows encoder its training produced (its out-of-fold
        vectors made these candidates), which then embeds every new catalog."""
        encoders = {e.name: e.manifest.get("encoder") for e in self.embeddings}
        return [{**spec, "config": {**spec["config"], "checkpoint": encoders[spec["name"]]}}
                if is_learned(spec["name"]) and encoders.get(spec["name"])
                and spec["config"].get("checkpoint") is None else spec
                for spec in self.specs]

    def search_params(self) -> dict:
        """The Matcher parameters these candidates were searched with."""
        return {"embedders": self.specs, "k": self.report["k"],
                "search": self.report.get("search", "exact"),
                **spec_params(self.report.get("blend"), self.report.get("allocation"),
                              self.report.get("bridges"), self.specs)}

    def context(self, table: pl.DataFrame | None = None) -> PairContext:
        """The feature builders' view of ``table`` (default: every candidate pair)."""
        return PairContext(self.table if table is None else table, self.postings,
                           {e.name: e for e in self.embeddings}, self.neighbours)


def postings_fingerprint(postings: pl.DataFrame) -> str:
    """Hash of every column of the postings: ties candidates.json to its postings.parquet."""
    text = postings.with_columns(pl.all().cast(pl.Utf8))  # fingerprint joins strings
    return fingerprint(text, tuple(postings.columns))


def table_fingerprint(table: pl.DataFrame) -> str:
    """Hash of a pair table's ends (i, j): ties features and scores to their candidates."""
    return digest(*pair_arrays(table))


def check_provenance(work: WorkDir, report: dict, postings: pl.DataFrame,
                     table: pl.DataFrame) -> None:
    """Refuse a work directory whose postings, candidates.json and candidates.parquet were not
    written by one `candidates` run (older reports without fingerprints: a warning says so)."""
    rerun = "rerun `python cli.py candidates`"
    if not (report.get("postings_fingerprint") and report.get("candidates_fingerprint")):
        log.warning(f"{work.candidates_report}: written before fingerprints existed, so the "
                    f"provenance of postings.parquet and candidates.parquet cannot be checked; "
                    f"{rerun} to record it")
    expected = report.get("postings_fingerprint")
    if expected is not None and postings_fingerprint(postings) != expected:
        raise InputError(f"not the postings candidates.json was built from; {rerun}",
                         file=str(work.postings))
    i, j = pair_arrays(table)
    if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= postings.height):
        raise InputError(f"pair indices out of range for {postings.height} postings; {rerun}",
                         file=str(work.candidates))
    expected = report.get("candidates_fingerprint")
    if table.height != report.get("pairs", table.height) or (
            expected is not None and digest(i, j) != expected):
        raise InputError(f"not the pairs candidates.json describes; {rerun}",
                         file=str(work.candidates))


def check_made_from(work: WorkDir, candidates, recorded: dict[Path, object]) -> None:
    """Refuse what train-ranker wrote (``recorded``: features.json, metrics.json or the model's
    schema.json, by path) when it was made from other candidates than the work directory's
    report ``candidates`` holds. Runs from before the fingerprints existed cannot be checked:
    one warning says so."""
    mine = candidates.get("candidates_fingerprint") if isinstance(candidates, dict) else None
    unchecked = [] if mine else [work.candidates_report]
    for path, report in recorded.items():
        theirs = report.get("candidates_fingerprint") if isinstance(report, dict) else None
        if not isinstance(report, dict) or (theirs and mine and theirs != mine):
            raise InputError("not made from this work directory's candidates; rerun `python "
                             "cli.py train-ranker`", file=str(path))
        if not theirs:
            unchecked.append(path)
    if unchecked:
        rerun = "train-ranker" if mine else "candidates` and `python cli.py train-ranker"
        names = ", ".join(str(path.relative_to(work.root)) for path in unchecked)
        log.warning(f"{work.root}: {names} written before fingerprints existed, so the "
                    f"provenance of train-ranker's outputs (the candidates they were made from) "
                    f"cannot be checked; rerun `python cli.py {rerun}` to record it")


def images_folder(images: str | Path | None) -> Path | None:
    if images is None:
        return None
    if not Path(images).is_dir():
        raise InputError("images folder not found" if not Path(images).exists()
                         else "--images is not a folder", file=str(images))
    return Path(images)


def embed(postings: pl.DataFrame, specs: list[dict], cache: Path | None, images: Path | None,
          timer: Timer, client=None) -> list[Embedding]:
    """Each embedder's vectors (from the cache where valid); with a Dask ``client``, computed
    by tasks on its cluster where the embedder allows (:func:`~pipeline.distributed.embed_on`)."""
    compute = None if client is None else embed_on(client)
    embeddings = []
    for spec in specs:
        embedder = create_embedder(spec["name"], **spec.get("config", {}))
        with timer.step(f"embed_{spec['name']}"):
            embeddings.append(embed_catalog(embedder, postings, cache, images, compute))
    return embeddings


def search(embeddings: list[Embedding], k: int, blend: dict | None, timer: Timer,
           method: str = "exact", client=None, allocation: dict | None = None,
           bridges: dict | None = None, list_depth: int | None = None) -> CandidateSet:
    """Candidate search (``method``: exact, ann or auto; the lists allocated by
    ``allocation``, with the photo ``bridges``, each list pairing ``list_depth`` entries where
    given, see :func:`candidates.build_candidates`), after neighbour blending of the vectors
    when ``blend`` asks for it (the blend finds the pairs, the plain vectors give their
    similarities); with a Dask ``client`` an exact search runs as tasks over shards of query
    rows (:func:`~pipeline.distributed.neighbours_on`)."""
    blended = None
    if blend:
        with timer.step("blend"):
            blended = [blend_neighbours(e, **blend, search=method) for e in embeddings]
    with timer.step("search"):
        find = find_neighbours if client is None else neighbours_on(client)
        return build_candidates(embeddings, k, method, find, allocation, blended, bridges,
                                list_depth)


def kept_by_filter(candidates: Candidates, bundle, timer: Timer, chunk_size: int | None = None,
                   client=None) -> pl.DataFrame:
    """The candidate pairs a fitted first-pass filter keeps (matching a new catalog), scored
    over chunks of ``chunk_size`` query postings: only one chunk's features exist at a time
    (with a Dask ``client``, one task per chunk on its cluster)."""
    with timer.step("filter"):
        ctx = candidates.context()
        if client is None:
            scores = np.concatenate([np.empty(0, np.float32), *map(bundle.filter_scores,
                                                                   ctx.chunks(chunk_size))])
        else:
            scores = filter_scores_on(client, ctx, bundle, chunk_size)
        keep = bundle.pair_filter.decide(scores, ctx.table_i, ctx.table_j, ctx.n)
        return candidates.table.filter(pl.Series(keep))


def pair_arrays(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return (frame["i"].to_numpy().astype(np.int64), frame["j"].to_numpy().astype(np.int64))
