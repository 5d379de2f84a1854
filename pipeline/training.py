"""Training on a candidate table under protocol P1 (docs/design.md): the first-pass filter,
features, out-of-fold scores of both stages, the post-processing fit and the final models."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from candidates import candidate_recall
from common.atomic import write_json, write_parquet
from common.console import Timer
from common.metric import entity_resolution_scores
from common.postings import label_codes
from common.workdir import WorkDir
from features import (SCORE_GRAPH_FEATURES, FeatureTable, PairContext, build_features,
                      view_columns)
from postprocess import PostProcessor
from ranker import (SECOND_STAGE_PARAMS, PairFilter, PairRanker, fit_final, group_size_weights,
                    out_of_fold_scores, score_quantiles, stacked_matrix,
                    stacked_out_of_fold_scores)

from .bundle import ModelBundle
from .coverage import coverage
from .distributed import build_features_on
from .settings import feature_groups, postprocess_steps
from .stages import Candidates, table_fingerprint

log = logging.getLogger(__name__)


@dataclass
class Training:
    """What a fit produces beside the model: ``metrics`` (metrics.json) and the out-of-fold
    scores (``i``, ``j``, ``p`` and, with a second stage, ``p_first_stage``)."""

    bundle: ModelBundle
    metrics: dict
    oof_scores: pl.DataFrame


def ranker_factory(backend: str, seed: int, stage: int = 1, client=None,
                   view_dropout: float = 0.0, view_columns: tuple[str, ...] = ()):
    params = SECOND_STAGE_PARAMS[backend] if stage == 2 else None
    return lambda: PairRanker(backend=backend, params=params, seed=seed, client=client,
                              view_dropout=view_dropout, view_columns=view_columns)


def training_pairs(features: FeatureTable, postings: pl.DataFrame):
    """Label codes per posting, the pairs' ends and their 0/1 targets."""
    labels = label_codes(postings)
    i = features.frame["i"].to_numpy().astype(np.int64)
    j = features.frame["j"].to_numpy().astype(np.int64)
    return labels, i, j, (labels[i] == labels[j]).astype(np.float32)


def features_of(ctx: PairContext, groups: list[str] | None, client=None,
                chunk_size: int | None = None) -> FeatureTable:
    """The features of every pair of ``ctx``: in this process, or one task per chunk of query
    postings on a Dask ``client``'s cluster (the same table)."""
    if client is None:
        return build_features(ctx, groups)
    return build_features_on(client, ctx, groups, chunk_size)


def fit_pair_filter(candidates: Candidates, params: dict, timer: Timer, client=None,
                    chunk_size: int | None = None):
    """The first-pass filter on the cheap groups (out of fold) and the table it keeps."""
    pair_filter = PairFilter(params["filter_threshold"], params["filter_max_pairs"],
                             backend=params["backend"], seed=params["seed"], client=client,
                             view_dropout=params["view_dropout"])
    with timer.step("filter"):
        cheap = features_of(candidates.context(), pair_filter.groups, client, chunk_size)
        pair_filter.view_columns = tuple(view_columns(cheap.names, candidates.embeddings))
        labels, i, j, y = training_pairs(cheap, candidates.postings)
        pair_filter.fit(cheap.matrix(), y, i, j, labels, cheap.names, params["folds"],
                        params["negative_rate"])
        report = pair_filter.report_
        log.info(f"  filter: {report['kept_pairs']:,} of {len(y):,} pairs kept, "
                 f"{report['positive_pairs_dropped']:,} of {report['positive_pairs']:,} "
                 f"matching pairs dropped")
        return pair_filter, cheap.groups, candidates.table.filter(pl.Series(pair_filter.oof_keep_))


def train(candidates: Candidates, params: dict, work: WorkDir | None = None,
          timer: Timer | None = None, client=None, chunk_size: int | None = None) -> Training:
    """Fit every part of the pipeline on labelled ``candidates`` with the Matcher's ``params``;
    with ``work``, features.parquet / features.json land there as soon as they are built.
    With a Dask ``client`` the features are built by tasks over chunks of ``chunk_size`` query
    postings at most and every ranker trains on its cluster."""
    timer = timer or Timer()
    steps = postprocess_steps(params["postprocess"])
    groups = feature_groups(params["groups"])
    postings, table = candidates.postings, candidates.table
    # Recorded in features.json, metrics.json and the model so `ablate` and `report` can tell
    # that the features, scores and model they read belong to the work directory's candidates.
    origin = {"candidates_fingerprint": table_fingerprint(table)}
    backend, folds, seed = params["backend"], params["folds"], params["seed"]
    negative_rate, stack = params["negative_rate"], params["stack"]
    pair_filter = filter_groups = None
    if params["filter_threshold"] > 0:
        pair_filter, filter_groups, table = fit_pair_filter(candidates, params, timer, client,
                                                            chunk_size)
    with timer.step("features"):
        features = features_of(candidates.context(table), groups, client, chunk_size)
    if work is not None:
        with timer.step("write_features"):
            write_parquet(work.features, features.frame)
            write_json(work.features_report, {"groups": features.groups,
                                              "seconds": features.seconds,
                                              "pairs": features.frame.height, **origin})
    labels, i, j, y = training_pairs(features, postings)
    X = features.matrix()
    weight = group_size_weights(i, labels) if params["weight_by_group_size"] else None
    views = {"view_dropout": params["view_dropout"],
             "view_columns": tuple(view_columns(features.names, candidates.embeddings))}
    make_ranker = ranker_factory(backend, seed, client=client, **views)
    with timer.step("cross_validation"):
        oof = out_of_fold_scores(X, y, i, j, labels, features.names, make_ranker, folds, seed,
                                 negative_rate=negative_rate, weight=weight)
    scores, second_oof, first_cut = oof.scores, None, None
    if stack:
        # The first stage's own threshold figures; without a second stage they are the first
        # step of the post-processing fitted below.
        first_cut = PostProcessor(steps=["threshold"], symmetrise=params["symmetrise"]).fit(
            i, j, oof.scores, labels)
        with timer.step("second_stage_cross_validation"):
            second_oof = stacked_out_of_fold_scores(
                X, y, i, j, labels, features.names, make_ranker, oof, folds, seed,
                negative_rate=negative_rate, weight=weight,
                make_second=ranker_factory(backend, seed, stage=2, client=client, **views))
        scores = second_oof.scores
    oof_scores = pl.DataFrame({"i": i.astype(np.int32), "j": j.astype(np.int32), "p": scores,
                               **({"p_first_stage": oof.scores} if stack else {})})
    if work is not None:
        write_parquet(work.oof_scores, oof_scores)
    with timer.step("postprocess"):
        processor = PostProcessor(steps=steps, symmetrise=params["symmetrise"]).fit(
            i, j, scores, labels)
    rounds = int(np.median(oof.best_iterations))
    with timer.step("final_model"):
        final = fit_final(X, y, features.names, make_ranker, rounds, seed, negative_rate, weight)
    second = second_rounds = None
    if stack:
        second_rounds = int(np.median(second_oof.best_iterations))
        with timer.step("final_second_stage"):
            second = fit_final(stacked_matrix(X, oof.scores, i, j, postings.height), y,
                               features.names + list(SCORE_GRAPH_FEATURES),
                               ranker_factory(backend, seed, stage=2, client=client, **views),
                               second_rounds, seed, negative_rate, weight)
    figures = processor.report_
    # The entity-resolution figures of the same out-of-fold match sets (self included, as the
    # per-posting ones count it).
    resolution = entity_resolution_scores(*processor.predict(i, j, scores, postings.height)[:2],
                                          labels)
    first_cut = first_cut or processor
    first_figures = first_cut.report_[0]
    metrics = {
        **{k: figures[-1][k] for k in ("f1", "precision", "recall")}, **resolution,
        "threshold": processor.steps_[0].threshold_, "postprocess_steps": figures,
        "backend": backend, "folds": folds, "seed": seed, "negative_rate": negative_rate,
        "weight_by_group_size": params["weight_by_group_size"],
        "view_dropout": {"share": params["view_dropout"], "columns": list(views["view_columns"])},
        "best_iterations": oof.best_iterations, "final_trees": rounds,
        "first_stage": {**{k: first_figures[k] for k in ("f1", "precision", "recall")},
                        "threshold": first_cut.steps_[0].threshold_},
        "second_stage": {"best_iterations": second_oof.best_iterations,
                         "final_trees": second_rounds} if stack else None,
        "pairs": int(len(y)), "positive_pairs": int(y.sum()), **origin,
        "features": len(features.names),
        "feature_groups": sorted(set(features.groups.values())),
        "candidate_recall": candidates.report.get("recall"),
        "filter": pair_filter.report_ if pair_filter else None,
        "filtered_recall": round(candidate_recall(i, j, labels), 6),
        "threshold_curve": [[t, round(f, 6)] for t, f in processor.threshold_curve_],
        "seconds": {**timer.seconds, "fold_seconds": oof.seconds,
                    "second_stage_fold_seconds": second_oof.seconds if stack else None,
                    "feature_groups": features.seconds, "total": timer.total},
    }
    bundle = ModelBundle(
        ranker=final, feature_groups=features.groups, embedders=candidates.fitted_specs(),
        k=candidates.report["k"], blend=candidates.report.get("blend"),
        allocation=candidates.report.get("allocation"), bridges=candidates.report.get("bridges"),
        list_depth=candidates.report.get("list_depth"),
        groups=groups or sorted(set(features.groups.values())), processor=processor,
        pair_filter=pair_filter, filter_groups=filter_groups, second=second, params=params,
        oof_metrics={k: metrics[k] for k in ("f1", "precision", "recall")},
        search_by_embedder=candidates.report.get("search_by_embedder"),
        score_quantiles=score_quantiles(scores), coverage=coverage(candidates.embeddings),
        **origin)
    if work is not None:
        write_json(work.metrics, metrics)
    return Training(bundle, metrics, oof_scores)

