"""Read a finished run from its work directory and re-apply its post-processing to the
out-of-fold scores: the match sets and per-posting figures every part of the report shows."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from common.atomic import read_json, read_parquet
from common.errors import InputError
from common.metric import per_posting_scores
from common.pairs import find_pairs, symmetrise
from common.postings import has_labels, label_codes
from common.workdir import WorkDir
from pipeline import ModelBundle
from pipeline.stages import check_made_from

# (label, smallest, largest) true group sizes; None: no upper bound. "1" appears only on
# catalogs that have singleton groups (Shopee train has none).
SIZE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1", 1, 1), ("2", 2, 2), ("3–5", 3, 5), ("6–10", 6, 10), ("> 10", 11, None))


@dataclass
class Run:
    """Everything the report reads from a work directory; arrays are indexed like the postings
    (``labels``) or like the out-of-fold pairs (``i``, ``j``, ``p``)."""

    work: WorkDir
    postings: pl.DataFrame
    candidates: dict
    features: dict
    metrics: dict
    bundle: ModelBundle     # the saved model, read and checked as `submit` reads it
    importance: pl.DataFrame
    ablation: object | None
    ablation_png: bytes | None
    i: np.ndarray
    j: np.ndarray
    p: np.ndarray
    labels: np.ndarray
    p_first_stage: np.ndarray | None = None  # the first stage's scores, when a second stage ran

    @property
    def n(self) -> int:
        return self.postings.height


@dataclass
class Matches:
    """The saved post-processing applied to the out-of-fold scores."""

    score: np.ndarray       # per pair: the (symmetrised) score the threshold is applied to
    keep: np.ndarray        # per pair: kept as a match
    same: np.ndarray        # per pair: a true match
    true_size: np.ndarray   # per posting: |T|, self included
    pred_size: np.ndarray   # per posting: |P|, self included
    f1: np.ndarray          # per posting
    precision: np.ndarray
    recall: np.ndarray
    threshold: float
    symmetrise: str
    max_matches: int
    # every predicted pair (graph-merged ones that were not candidates included) with its
    # post-processed score, as `submit` would list them; self is implicit
    kept_i: np.ndarray
    kept_j: np.ndarray
    kept_score: np.ndarray


def load_run(root: str | Path) -> Run:
    """Read the artifacts of ``candidates`` and ``train-ranker``; a missing one is an
    :class:`InputError` naming the command that writes it."""
    work = WorkDir(root)
    if not work.root.is_dir():
        raise InputError("not a folder", file=str(work.root))
    work.check_not_writing()
    candidates = read_json(work.candidates_report, "candidates")
    postings = read_parquet(work.postings, "candidates")
    if not has_labels(postings):
        raise InputError("the postings have no label_group column; the report needs labels",
                         file=str(work.postings), column="label_group")
    metrics = read_json(work.metrics, "train-ranker")
    features = read_json(work.features_report, "train-ranker")
    work.require(work.model / "schema.json", "train-ranker")
    bundle = ModelBundle.load(work.model)
    check_made_from(work, candidates, {
        work.metrics: metrics, work.features_report: features,
        work.model / "schema.json": {"candidates_fingerprint": bundle.candidates_fingerprint}})
    work.require(work.features, "train-ranker")
    importance = pl.read_csv(work.require(work.model / "importance.csv", "train-ranker"),
                             schema_overrides={"feature": pl.String, "group": pl.String,
                                               "gain": pl.Float64})
    oof = read_parquet(work.oof_scores, "train-ranker")
    for column in ("i", "j", "p"):
        if column not in oof.columns:
            raise InputError("required column is missing", file=str(work.oof_scores),
                             column=column)
    if not isinstance(features, dict) or oof.height != features.get("pairs", oof.height):
        raise InputError(f"{oof.height:,} scored pairs but features.json counts "
                         f"{features['pairs']:,}; rerun train-ranker", file=str(work.oof_scores))
    i = oof["i"].to_numpy().astype(np.int64)
    j = oof["j"].to_numpy().astype(np.int64)
    if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= postings.height):
        raise InputError(f"pair indices outside the {postings.height:,} postings; the work "
                         f"directory mixes runs", file=str(work.oof_scores))
    first_stage = None
    if bundle.second is not None:
        if "p_first_stage" not in oof.columns:
            raise InputError("the model has a second stage but the first stage's scores are "
                             "missing; rerun train-ranker", file=str(work.oof_scores),
                             column="p_first_stage")
        first_stage = oof["p_first_stage"].to_numpy().astype(np.float32)
    ablation_json = work.root / "ablation.json"
    ablation_png = work.root / "ablation.png"
    return Run(work=work, postings=postings, candidates=candidates, features=features,
               metrics=metrics, bundle=bundle, importance=importance,
               ablation=read_json(ablation_json, "ablate") if ablation_json.is_file() else None,
               ablation_png=ablation_png.read_bytes() if ablation_png.is_file() else None,
               i=i, j=j, p=oof["p"].to_numpy().astype(np.float32),
               labels=label_codes(postings), p_first_stage=first_stage)


def recorded_images(candidates: dict | None) -> Path | None:
    """The images folder ``candidates`` was given (its report ``candidates.json``), when it still
    exists: the default source of thumbnails."""
    recorded = candidates.get("images") if isinstance(candidates, dict) else None
    return Path(recorded) if recorded and Path(recorded).is_dir() else None


def apply_postprocess(run: Run) -> Matches:
    """Match sets from the saved post-processing pipeline, as `submit` applies it."""
    processor = run.bundle.processor
    threshold = float(processor.steps_[0].threshold_)
    how = processor.symmetrise
    # shown scores: the symmetrised ranker scores that the first cut is applied to
    score = symmetrise(run.i, run.j, run.p, run.n, how)
    kept_i, kept_j, kept_score = processor.predict(run.i, run.j, run.p, run.n)
    # The graph merge can add pairs that were never candidates: the figures count every
    # predicted pair; the per-pair views (galleries, plots) mark the candidate pairs kept.
    position = find_pairs(run.i, run.j, kept_i, kept_j, run.n)
    keep = np.zeros(len(run.i), dtype=bool)
    keep[position[position >= 0]] = True
    same = run.labels[run.i] == run.labels[run.j]
    f1, precision, recall = per_posting_scores(kept_i, kept_j, run.labels)
    true_size = np.bincount(run.labels)[run.labels]
    pred_size = 1 + np.bincount(kept_i, minlength=run.n)
    return Matches(score=np.asarray(score, np.float32), keep=keep, same=same,
                   true_size=true_size, pred_size=pred_size, f1=f1, precision=precision,
                   recall=recall, threshold=threshold, symmetrise=how,
                   max_matches=processor.max_matches, kept_i=kept_i, kept_j=kept_j,
                   kept_score=np.asarray(kept_score, np.float32))


def scores_by_group_size(matches: Matches) -> list[dict]:
    """Mean F1, precision, recall overall and per bucket of true group size."""
    rows = [_bucket_row("all", np.ones(len(matches.f1), bool), matches)]
    for label, low, high in SIZE_BUCKETS:
        inside = (matches.true_size >= low) & (
            matches.true_size <= (high if high is not None else np.iinfo(np.int64).max))
        if inside.any() or label != "1":
            rows.append(_bucket_row(label, inside, matches))
    return rows


def _bucket_row(label: str, inside: np.ndarray, matches: Matches) -> dict:
    count = int(inside.sum())

    def mean(values: np.ndarray) -> float | None:
        return float(values[inside].mean()) if count else None

    return {"size": label, "postings": count, "f1": mean(matches.f1),
            "precision": mean(matches.precision), "recall": mean(matches.recall),
            "mean_predicted_size": mean(matches.pred_size.astype(np.float64))}
