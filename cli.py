"""Command line of the product-matching toolkit. It only wires the stages together:

    candidates    postings → embeddings → candidate pairs             (work dir)
    train-ranker  candidates → features → P1 cross-validation → model  (work dir)
    train-embedder  labelled postings → ArcFace-trained text or image model (P2 out-of-fold)
    ablate        P1 F1 without each feature group and with each alone   (work dir)
    submit        new postings + model → submission CSV
    evaluate      submission + labelled postings → F1, precision, recall
    report        a trained work dir → one self-contained HTML page (plots, match galleries)
    demo          all of the above on a generated catalog

Every command exits with status 2 and one clear line on bad input.
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from common.atomic import read_json, write_json, write_parquet, write_text
from common.console import Timer, stderr, summary
from common.errors import InputError
from common.postings import has_labels, label_codes, load_postings
from common.workdir import WorkDir

DEFAULT_EMBEDDERS = "tfidf,tfidf_char,phash"
DEFAULT_POSTPROCESS = "threshold,score_blend,chisel,min2,prune,merge"
FILTER_FOLDER = "filter"  # the first-pass filter's model, inside the model folder
STACK_FOLDER = "stack"  # the second-stage ranker, inside the model folder
VERSION = "0.1.0"


# ----------------------------------------------------------------------------- stage wiring

def _embed(postings: pl.DataFrame, specs: list[dict], cache: Path, images: Path | None,
           timer: Timer) -> list:
    from embedders import create_embedder, embed_catalog

    embeddings = []
    for spec in specs:
        embedder = create_embedder(spec["name"], **spec.get("config", {}))
        with timer.step(f"embed_{spec['name']}"):
            embeddings.append(embed_catalog(embedder, postings, cache, images))
    return embeddings


def _images_dir(images: str | None) -> Path | None:
    if images is None:
        return None
    if not Path(images).is_dir():
        raise InputError("images folder not found" if not Path(images).exists()
                         else "--images is not a folder", file=images)
    return Path(images)


def _embedder_specs(names: str) -> list[dict]:
    """``a,b:key=value:key2=value2,…`` → [{name, config}]; values are JSON where they parse."""
    from embedders import create_embedder

    specs = []
    for item in [n.strip() for n in names.split(",") if n.strip()]:
        name, *settings = item.split(":")
        overrides = {}
        for setting in settings:
            key, sep, value = setting.partition("=")
            if not sep:
                raise InputError(f"embedder setting {setting!r} is not key=value")
            try:
                overrides[key] = json.loads(value)
            except json.JSONDecodeError:
                overrides[key] = value
        try:
            specs.append({"name": name, "config": create_embedder(name, **overrides).get_config()})
        except (TypeError, ValueError) as exc:
            raise InputError(f"embedder {name!r}: {exc}") from None
    if not specs:
        raise InputError("--embedders names no embedder")
    return specs


def _search(embeddings: list, k: int, blend: dict | None, timer: Timer):
    """Candidate search, after neighbour blending of the vectors when ``blend`` asks for it."""
    from candidates import blend_neighbours, build_candidates

    if blend:
        with timer.step("blend"):
            embeddings = [blend_neighbours(e, **blend) for e in embeddings]
    with timer.step("search"):
        return build_candidates(embeddings, k)


def _blend_spec(args) -> dict | None:
    if args.blend_depth <= 0:
        return None
    return {"depth": args.blend_depth, "iterations": args.blend_iterations,
            "power": args.blend_power}


def _pair_context(postings: pl.DataFrame, table: pl.DataFrame, embeddings: list,
                  neighbours: dict):
    from features import PairContext

    return PairContext(table, postings, {e.name: e for e in embeddings}, neighbours)


def run_candidates(args) -> dict:
    from candidates import recall_by_source, save_neighbours

    timer = Timer()
    work = WorkDir(args.work)
    with timer.step("load"):
        postings = load_postings(args.postings)
        specs = _embedder_specs(args.embedders)
        images = _images_dir(args.images)
        work.remove_stale_temporaries()
        write_parquet(work.postings, postings)
    embeddings = _embed(postings, specs, work.embeddings, images, timer)
    blend = _blend_spec(args)
    found = _search(embeddings, args.k, blend, timer)
    with timer.step("write"):
        write_parquet(work.candidates, found.table)
        save_neighbours(work.neighbours, found.neighbours)
    table = found.table
    report = {"postings": str(Path(args.postings).resolve()),
              "images": str(images.resolve()) if images else None,
              "rows": postings.height, "k": args.k, "embedders": specs, "blend": blend,
              "pairs": table.height, "pairs_per_posting": round(table.height / postings.height, 3),
              "seconds": {**timer.seconds, **found.seconds, "total": timer.total}}
    if has_labels(postings):
        recall = recall_by_source(table, label_codes(postings))
        report["recall"] = recall.pop("all")
        report["recall_by_embedder"] = recall
    write_json(work.candidates_report, report)
    recall = f", recall {report['recall']:.3f}" if "recall" in report else ""
    summary(f"candidates: {table.height:,} pairs ({report['pairs_per_posting']:.1f} per posting)"
            f"{recall}, {timer.total:.1f} s → {work.candidates}")
    return report


def _filter_pairs(postings: pl.DataFrame, table: pl.DataFrame, embeddings: list, neighbours: dict,
                  pair_filter, filter_dir: Path, timer: Timer) -> pl.DataFrame:
    """The candidate pairs a saved first-pass filter keeps (`submit`)."""
    from features import build_features

    with timer.step("filter"):
        ctx = _pair_context(postings, table, embeddings, neighbours)
        cheap = build_features(ctx, pair_filter.groups)
        _check_schema(cheap.names, pair_filter.feature_names_, filter_dir)
        keep = pair_filter.keep(cheap.matrix(pair_filter.feature_names_), ctx.i, ctx.j, ctx.n)
        return table.filter(pl.Series(keep))


def _fit_filter(args, postings: pl.DataFrame, table: pl.DataFrame, embeddings: list,
                neighbours: dict, timer: Timer):
    """Fit the first-pass filter on the cheap groups (out of fold) and the table it keeps."""
    from features import build_features
    from ranker import PairFilter

    pair_filter = PairFilter(args.filter_threshold, backend=args.backend, seed=args.seed)
    with timer.step("filter"):
        ctx = _pair_context(postings, table, embeddings, neighbours)
        cheap = build_features(ctx, pair_filter.groups)
        labels, i, j, y = _training_pairs(cheap, postings)
        pair_filter.fit(cheap.matrix(), y, i, j, labels, cheap.names, args.folds,
                        args.negative_rate)
        stderr.print(f"  filter: {pair_filter.report_['kept_pairs']:,} of {len(y):,} pairs kept, "
                     f"{pair_filter.report_['positive_pairs_dropped']:,} of "
                     f"{pair_filter.report_['positive_pairs']:,} matching pairs dropped")
        return pair_filter, cheap.groups, table.filter(pl.Series(pair_filter.oof_keep_))


def _training_pairs(features, postings: pl.DataFrame):
    labels = label_codes(postings)
    i = features.frame["i"].to_numpy().astype(np.int64)
    j = features.frame["j"].to_numpy().astype(np.int64)
    return labels, i, j, (labels[i] == labels[j]).astype(np.float32)


def _ranker_factory(args, stage: int = 1):
    from ranker import SECOND_STAGE_PARAMS, PairRanker

    params = SECOND_STAGE_PARAMS[args.backend] if stage == 2 else None
    return lambda: PairRanker(backend=args.backend, params=params, seed=args.seed)


def run_train_ranker(args) -> dict:
    from candidates import candidate_recall, load_neighbours
    from postprocess import PostProcessor
    from ranker import (SCORE_GRAPH_FEATURES, SCORE_GRAPH_GROUP, fit_final, group_size_weights,
                        out_of_fold_scores, stacked_matrix, stacked_out_of_fold_scores,
                        write_importance)

    timer = Timer()
    steps = _postprocess_steps(args.postprocess)
    work = WorkDir(args.work)
    report = read_json(work.require(work.candidates_report, "candidates"))
    work.remove_stale_temporaries()
    postings = pl.read_parquet(work.require(work.postings, "candidates"))
    if not has_labels(postings):
        raise InputError("the postings have no label_group column; train-ranker needs labels",
                         file=report["postings"], column="label_group")
    table = pl.read_parquet(work.require(work.candidates, "candidates"))
    specs = report["embedders"]
    vector_names = [s["name"] for s in specs if f"rank_{s['name']}" in table.columns]
    neighbours = load_neighbours(work.neighbours, vector_names)
    images = Path(report["images"]) if report.get("images") else None
    groups = args.groups.split(",") if args.groups else None
    embeddings = _embed(postings, specs, work.embeddings, images, timer)
    pair_filter = None
    if args.filter_threshold > 0:
        pair_filter, filter_groups, table = _fit_filter(args, postings, table, embeddings,
                                                        neighbours, timer)
    with timer.step("features"):
        from features import build_features

        features = build_features(_pair_context(postings, table, embeddings, neighbours), groups)
    with timer.step("write_features"):
        write_parquet(work.features, features.frame)
        write_json(work.features_report, {"groups": features.groups, "seconds": features.seconds,
                                          "pairs": features.frame.height})
    labels, i, j, y = _training_pairs(features, postings)
    X = features.matrix()
    weight = group_size_weights(i, labels) if args.weight_by_group_size else None
    make_ranker = _ranker_factory(args)
    with timer.step("cross_validation"):
        oof = out_of_fold_scores(X, y, i, j, labels, features.names, make_ranker, args.folds,
                                 args.seed, negative_rate=args.negative_rate, weight=weight)
    scores, second_oof, first_cut = oof.scores, None, None
    if args.stack:
        # The first stage's own threshold figures; without a second stage they are the first
        # step of the post-processing fitted below.
        first_cut = PostProcessor(steps=["threshold"], symmetrise=args.symmetrise).fit(
            i, j, oof.scores, labels)
        with timer.step("second_stage_cross_validation"):
            second_oof = stacked_out_of_fold_scores(
                X, y, i, j, labels, features.names, make_ranker, oof, args.folds, args.seed,
                negative_rate=args.negative_rate, weight=weight,
                make_second=_ranker_factory(args, stage=2))
        scores = second_oof.scores
    write_parquet(work.oof_scores, pl.DataFrame({
        "i": i.astype(np.int32), "j": j.astype(np.int32), "p": scores,
        **({"p_first_stage": oof.scores} if args.stack else {})}))
    with timer.step("postprocess"):
        processor = PostProcessor(steps=steps, symmetrise=args.symmetrise).fit(
            i, j, scores, labels)
    rounds = int(np.median(oof.best_iterations))
    with timer.step("final_model"):
        final = fit_final(X, y, features.names, make_ranker, rounds, args.seed,
                          args.negative_rate, weight)
    second, second_groups = None, None
    if args.stack:
        second_rounds = int(np.median(second_oof.best_iterations))
        second_groups = {**features.groups, **dict.fromkeys(SCORE_GRAPH_FEATURES,
                                                            SCORE_GRAPH_GROUP)}
        with timer.step("final_second_stage"):
            second = fit_final(stacked_matrix(X, oof.scores, i, j, postings.height), y,
                               features.names + list(SCORE_GRAPH_FEATURES),
                               _ranker_factory(args, stage=2),
                               second_rounds, args.seed, args.negative_rate, weight)
    figures = processor.report_
    first_cut = first_cut or processor
    first_figures = first_cut.report_[0]
    final_score = {k: figures[-1][k] for k in ("f1", "precision", "recall")}
    metrics = {
        **final_score, "threshold": processor.steps_[0].threshold, "postprocess_steps": figures,
        "backend": args.backend, "folds": args.folds, "seed": args.seed,
        "negative_rate": args.negative_rate, "weight_by_group_size": args.weight_by_group_size,
        "best_iterations": oof.best_iterations, "final_trees": rounds,
        "first_stage": {**{k: first_figures[k] for k in ("f1", "precision", "recall")},
                        "threshold": first_cut.steps_[0].threshold},
        "second_stage": {"best_iterations": second_oof.best_iterations,
                         "final_trees": second_rounds} if args.stack else None,
        "pairs": int(len(y)),
        "positive_pairs": int(y.sum()), "features": len(features.names),
        "feature_groups": sorted(set(features.groups.values())),
        "candidate_recall": report.get("recall"),
        "filter": pair_filter.report_ if pair_filter else None,
        "filtered_recall": round(candidate_recall(i, j, labels), 6),
        "threshold_curve": [[t, round(f, 6)] for t, f in processor.threshold_curve_],
        "seconds": {**timer.seconds, "fold_seconds": oof.seconds,
                    "second_stage_fold_seconds": second_oof.seconds if args.stack else None,
                    "feature_groups": features.seconds, "total": timer.total},
    }
    if pair_filter:
        pair_filter.save(work.model / FILTER_FOLDER, filter_groups)
    elif (work.model / FILTER_FOLDER).exists():
        shutil.rmtree(work.model / FILTER_FOLDER)  # a filter from an earlier run
    if second:
        second.save(work.model / STACK_FOLDER, second_groups, {"stage": 2})
        write_importance(second.gain_importance(), second_groups, work.model / STACK_FOLDER)
    elif (work.model / STACK_FOLDER).exists():
        shutil.rmtree(work.model / STACK_FOLDER)
    final.save(work.model, features.groups, {
        "toolkit_version": VERSION, "embedders": specs, "k": report["k"],
        "blend": report.get("blend"), "filter": FILTER_FOLDER if pair_filter else None,
        "stack": STACK_FOLDER if second else None,
        "feature_groups": groups or sorted(set(features.groups.values())),
        "postprocess": processor.get_params(), "oof_metrics": {k: metrics[k] for k in
                                                             ("f1", "precision", "recall")}})
    write_importance(final.gain_importance(), features.groups, work.model)
    write_json(work.metrics, metrics)
    summary(f"train-ranker: out-of-fold F1 {metrics['f1']:.4f} (precision "
            f"{metrics['precision']:.4f}, recall {metrics['recall']:.4f}; threshold only "
            f"{figures[0]['f1']:.4f} at {metrics['threshold']:.2f}"
            + (f", first stage alone {first_figures['f1']:.4f}" if args.stack else "")
            + f") on {len(y):,} pairs, "
            f"{timer.total:.1f} s → {work.metrics}")
    return metrics


def run_train_embedder(args) -> dict:
    from common.postings import fingerprint
    from embedders.arcface import ArcFaceSettings, ImageEncoder, TextEncoder
    from embedders.arcface.folds import train_folds

    postings = load_postings(args.postings)
    if not has_labels(postings):
        raise InputError("ArcFace training needs a label_group column", file=args.postings,
                         column="label_group")
    settings = ArcFaceSettings(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, head_lr=args.head_lr,
        scale=args.scale, margin=args.margin, easy_margin=args.easy_margin, sam=args.sam,
        device=args.device, amp=not args.no_amp, amp_dtype=args.amp_dtype, seed=args.seed)
    if args.modality == "text":
        from common.text import clean_titles

        items = clean_titles(postings["title"])
        keep = np.array([t != "" for t in items])

        def make_encoder():
            return TextEncoder(args.model_path, args.max_seq_length, args.freeze_layers)
    else:
        if not args.images or "image" not in postings.columns:
            raise InputError("image training needs --images and an image column",
                             file=args.postings, column="image")
        from embedders.image import ImagePreprocessor, create_backbone, read_images

        preprocess = ImagePreprocessor.for_backbone(create_backbone(args.backbone,
                                                                    args.checkpoint),
                                                    args.image_size)
        items, missing = read_images(postings["image"].to_list(), Path(args.images), preprocess)
        keep = ~missing
        if missing.any():
            from common.console import warn

            warn(f"{int(missing.sum())} images missing or unreadable; trained without them")

        def make_encoder():
            return ImageEncoder(args.backbone, args.checkpoint, args.pooling,
                                image_size=args.image_size)
    if not keep.all():
        if args.oof:
            raise InputError(f"{int((~keep).sum())} postings have no {args.modality}; "
                             "out-of-fold training needs every posting", file=args.postings)
        items = items[keep] if isinstance(items, np.ndarray) else \
            [t for t, k in zip(items, keep) if k]
    labels = label_codes(postings)[keep]
    try:
        report = train_folds(make_encoder, items, labels, settings, Path(args.out), args.folds,
                             args.oof, fingerprint(postings), args.seed, args.max_steps)
    except ValueError as exc:
        raise InputError(str(exc), file=args.postings) from None
    summary(f"train-embedder: {args.modality} model on {len(labels):,} postings "
            f"({report['samples_per_second']:.1f} samples/s on {report['device']}, "
            f"amp {report['amp']}), loss {report['final_loss_first']:.3f} → "
            f"{report['final_loss_last']:.3f} → {report['final']}"
            + (f"; out-of-fold vectors in {Path(args.out) / 'oof'}" if args.oof else ""))
    return report


def run_ablate(args) -> list[dict]:
    from features import FeatureTable
    from postprocess import PostProcessor
    from ranker import ablate_groups, ablation_chart, ablation_markdown

    timer = Timer()
    work = WorkDir(args.work)
    postings = pl.read_parquet(work.require(work.postings, "candidates"))
    frame = pl.read_parquet(work.require(work.features, "train-ranker"))
    groups = read_json(work.require(work.features_report, "train-ranker"))["groups"]
    # features.json lists the groups by name; the boosters sample columns by position, so the
    # matrix keeps train-ranker's column order (the parquet's) and the all-groups row is its run.
    features = FeatureTable(frame, {name: groups[name] for name in frame.columns if name in groups})
    labels, i, j, y = _training_pairs(features, postings)

    def evaluate(scores: np.ndarray) -> dict:
        # The same threshold step (and 50-match cap) that train-ranker tunes first.
        final = PostProcessor(steps=["threshold"], symmetrise=args.symmetrise) \
            .fit(i, j, scores, labels).report_[-1]
        return {key: final[key] for key in ("f1", "precision", "recall")}

    with timer.step("ablation"):
        rows = ablate_groups(features.matrix(), y, i, j, labels, features.names, groups,
                             _ranker_factory(args), evaluate, args.folds, args.seed,
                             args.negative_rate,
                             only=args.groups.split(",") if args.groups else None,
                             second_stage=args.stack, make_second=_ranker_factory(args, stage=2))
    write_json(work.root / "ablation.json", {"rows": rows, "backend": args.backend,
                                             "folds": args.folds, "seed": args.seed,
                                             "negative_rate": args.negative_rate,
                                             "seconds": timer.total})
    write_text(work.root / "ablation.md", ablation_markdown(rows))
    ablation_chart(rows, work.root / "ablation.png")
    summary(f"ablate: {len(rows)} runs, all-groups F1 {rows[0]['f1']:.4f}, "
            f"{timer.total:.1f} s → {work.root / 'ablation.md'}")
    return rows


def run_submit(args) -> pl.DataFrame:
    from postprocess import PostProcessor, to_submission
    from ranker import PairRanker

    timer = Timer()
    model_dir = Path(args.model)
    if not (model_dir / "schema.json").exists() and (model_dir / "model" / "schema.json").exists():
        model_dir = model_dir / "model"  # a work directory was given
    ranker, schema = PairRanker.load(model_dir)
    _check_pipeline_settings(schema, model_dir)
    processor = _saved_postprocessor(schema, model_dir)
    pair_filter = _saved_filter(schema, model_dir)
    second = _saved_second_stage(schema, model_dir, ranker)
    with timer.step("load"):
        postings = load_postings(args.postings)
        images = _images_dir(args.images)
    scratch = None
    if args.work:
        work = WorkDir(args.work)
    else:
        scratch = tempfile.mkdtemp(prefix="match-submit-")
        work = WorkDir(scratch)
    try:
        embeddings = _embed(postings, schema["embedders"], work.embeddings, images, timer)
        found = _search(embeddings, schema["k"], schema.get("blend"), timer)
        table = found.table
        if pair_filter:
            table = _filter_pairs(postings, table, embeddings, found.neighbours, pair_filter,
                                  model_dir / schema["filter"], timer)
        from features import build_features

        ctx = _pair_context(postings, table, embeddings, found.neighbours)
        with timer.step("features"):
            features = build_features(ctx, schema["feature_groups"])
        _check_schema(features.names, ranker.feature_names_, model_dir)
        i = features.frame["i"].to_numpy().astype(np.int64)
        j = features.frame["j"].to_numpy().astype(np.int64)
        with timer.step("score"):
            p = np.concatenate([np.empty(0, np.float32)] + [
                ranker.predict(block) for block in features.row_blocks(ranker.feature_names_)])
        if second:
            from ranker import predict_second_stage

            with timer.step("second_stage"):
                p = predict_second_stage(second, features.row_blocks(ranker.feature_names_), p,
                                         i, j, postings.height)
        with timer.step("postprocess"):
            kept_i, kept_j, kept_score = processor.predict(i, j, p, postings.height)
            submission = to_submission(postings["posting_id"], kept_i, kept_j, kept_score)
        with timer.step("write"):
            out = Path(args.out)
            from common.atomic import atomic_path

            with atomic_path(out) as tmp:
                submission.write_csv(tmp)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    sizes = submission["matches"].str.count_matches(" ") + 1
    if args.work:
        write_json(work.root / "submit.json", {
            "postings": postings.height, "candidate_pairs": found.table.height,
            "pairs": table.height,
            "matches_per_posting": round(float(sizes.mean()), 3), "out": str(args.out),
            "seconds": {**timer.seconds, "total": timer.total}})
    summary(f"submit: {postings.height:,} postings, {table.height:,} pairs, "
            f"{float(sizes.mean()):.2f} matches per posting, {timer.total:.1f} s → {args.out}")
    return submission


def _check_pipeline_settings(schema: dict, model_dir: Path) -> None:
    """The settings `submit` replays from schema.json (but the post-processing parameters, which
    `_saved_postprocessor` reads) are present, well typed and buildable."""
    from embedders import create_embedder

    where = str(model_dir / "schema.json")
    problems = []
    if not (isinstance(schema.get("k"), int) and schema["k"] >= 1):
        problems.append("'k' is not a positive integer")
    if not isinstance(schema.get("feature_groups"), list):
        problems.append("'feature_groups' is not a list")
    specs = schema.get("embedders")
    if not (isinstance(specs, list) and specs and all(
            isinstance(e, dict) and isinstance(e.get("name"), str)
            and isinstance(e.get("config", {}), dict) for e in specs)):
        problems.append("'embedders' is not a list of {name, config}")
    if problems:
        raise InputError(f"not a usable model schema: {'; '.join(problems)}", file=where)
    for spec in specs:
        try:
            create_embedder(spec["name"], **spec.get("config", {}))
        except InputError as exc:
            raise InputError(exc.reason, file=where) from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"embedder {spec['name']!r} cannot be built from its config ({exc})",
                             file=where) from None


def _postprocess_steps(names: str) -> list[str]:
    from postprocess import POSTPROCESS_STEPS

    steps = [n.strip() for n in names.split(",") if n.strip()]
    if "threshold" not in steps:
        steps.insert(0, "threshold")
    unknown = [n for n in steps if n not in POSTPROCESS_STEPS]
    if unknown:
        raise InputError(f"--postprocess names unknown steps {unknown} "
                         f"(known: {', '.join(POSTPROCESS_STEPS)})")
    # The steps always run in their fixed order, whatever order they are named in.
    return [n for n in POSTPROCESS_STEPS if n in steps]


def _saved_postprocessor(schema: dict, model_dir: Path):
    from postprocess import PostProcessor

    try:
        return PostProcessor.from_params(schema["postprocess"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"unreadable 'postprocess' parameters ({exc!r}); retrain",
                         file=str(model_dir / "schema.json")) from None


def _model_part(schema: dict, model_dir: Path, key: str) -> Path | None:
    """The folder of an optional part of the model (filter, second stage) that schema.json
    names under ``key``; None when the model has no such part."""
    folder = schema.get(key)
    if folder is None:
        return None
    if not (isinstance(folder, str) and (model_dir / folder).is_dir()):
        raise InputError(f"'{key}' names no folder beside schema.json ({folder!r})",
                         file=str(model_dir / "schema.json"))
    return model_dir / folder


def _saved_filter(schema: dict, model_dir: Path):
    from ranker import PairFilter

    folder = _model_part(schema, model_dir, "filter")
    return PairFilter.load(folder) if folder else None


def _saved_second_stage(schema: dict, model_dir: Path, first):
    from ranker import SCORE_GRAPH_FEATURES, PairRanker

    folder = _model_part(schema, model_dir, "stack")
    if folder is None:
        return None
    second, _ = PairRanker.load(folder)
    expected = first.feature_names_ + list(SCORE_GRAPH_FEATURES)
    if second.feature_names_ != expected:
        raise InputError(
            f"the second-stage ranker's features are not the first stage's followed by the "
            f"score-graph features (second stage only: "
            f"{sorted(set(second.feature_names_) - set(expected))}; expected only: "
            f"{sorted(set(expected) - set(second.feature_names_))}); retrain",
            file=str(folder / "schema.json"))
    return second


def _check_schema(built: list[str], expected: list[str], model_dir: Path) -> None:
    if sorted(built) != sorted(expected):
        unknown = sorted(set(expected) - set(built))
        extra = sorted(set(built) - set(expected))
        raise InputError(f"the model's feature schema does not match the features this toolkit "
                         f"builds (unknown to it: {unknown}; not in the model: {extra}); retrain",
                         file=str(model_dir / "schema.json"))


def run_evaluate(args) -> dict:
    from common.metric import score_submission

    postings = load_postings(args.postings)
    if not has_labels(postings):
        raise InputError("no label_group column: nothing to evaluate against",
                         file=args.postings, column="label_group")
    submission = load_submission(args.submission)
    score = score_submission(postings, submission, args.submission).as_dict()
    print(json.dumps(score))
    return score


def load_submission(path: str) -> pl.DataFrame:
    if not Path(path).is_file():
        raise InputError("file not found", file=path)
    try:
        return pl.read_csv(path, infer_schema=False)
    except Exception as exc:
        raise InputError(f"not a readable CSV file ({str(exc).splitlines()[0]})",
                         file=path) from None


def run_report(args):
    from report import build_report

    if args.images and not Path(args.images).is_dir():
        raise InputError("not a folder", file=args.images)
    result = build_report(args.work, args.out, args.images, cards=args.cards, seed=args.seed)
    summary(f"report: {result.postings:,} postings, {result.pairs:,} pairs, F1 {result.f1:.4f}, "
            f"{result.cards} gallery cards ({result.thumbnails} thumbnails), "
            f"{result.bytes / 1e6:.1f} MB, {result.seconds['total']:.1f} s → {result.path}")
    return result


def run_demo(args) -> dict:
    from datasets import generate_catalog

    root = Path(args.work)
    root.mkdir(parents=True, exist_ok=True)
    train_path, test_path = root / "demo_train.csv", root / "demo_test.csv"
    generate_catalog(n_products=args.products, seed=0).write_csv(train_path)
    generate_catalog(n_products=max(args.products // 3, 20), seed=1, id_prefix="test") \
        .write_csv(test_path)
    stderr.print(f"generated catalogs (not real data): {train_path}, {test_path}")
    # Each command's namespace comes from the parser, so the demo runs with the CLI's defaults.
    parser = build_parser()
    work = str(root / "work")
    for argv in (["candidates", "--postings", str(train_path), "--work", work, "--k", str(args.k)],
                 ["train-ranker", "--work", work],
                 ["submit", "--postings", str(test_path), "--model", work,
                  "--out", str(root / "submission.csv")]):
        command = parser.parse_args(argv)
        command.run(command)
    stderr.print("held-out generated test catalog (labels known because it is generated):")
    return run_evaluate(argparse.Namespace(postings=str(test_path),
                                           submission=str(root / "submission.csv")))


# ----------------------------------------------------------------------------- argument parsing

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python cli.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=VERSION)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("candidates", help="embed postings and build candidate pairs")
    p.add_argument("--postings", required=True, help="postings CSV or parquet")
    p.add_argument("--images", help="folder holding the files named in the image column")
    p.add_argument("--work", required=True, help="work directory for every artifact")
    p.add_argument("--embedders", default=DEFAULT_EMBEDDERS,
                   help=f"comma-separated embedder names (default {DEFAULT_EMBEDDERS})")
    p.add_argument("--k", type=int, default=50, help="neighbours per posting per embedder")
    p.add_argument("--blend-depth", type=int, default=0,
                   help="neighbour blending before the search: mix each vector with its DEPTH "
                        "nearest neighbours' (0, the default: off)")
    p.add_argument("--blend-iterations", type=int, default=1,
                   help="repeat the blending on the blended vectors (INB)")
    p.add_argument("--blend-power", type=float, default=1.0,
                   help="neighbour weight = similarity ** POWER (own vector: 1)")
    p.set_defaults(run=run_candidates)

    p = sub.add_parser("train-ranker", help="build features, cross-validate (P1), train the model")
    p.add_argument("--work", required=True, help="work directory written by `candidates`")
    p.add_argument("--backend", choices=["lightgbm", "xgboost"], default="lightgbm")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--negative-rate", type=float, default=0.25,
                   help="share of non-matching pairs kept for training (weighted back)")
    p.add_argument("--symmetrise", choices=["mean", "max", "none"], default="mean")
    p.add_argument("--filter-threshold", type=float, default=0.05,
                   help="first-pass filter: drop pairs whose p(match) from a small model on the "
                        "similarity and phash features is below this in both directions, "
                        "before the other features are built (0: no filter)")
    p.add_argument("--groups", help="comma-separated feature groups (default: all)")
    p.add_argument("--stack", action=argparse.BooleanOptionalAction, default=True,
                   help="second stage: a ranker that also sees the first stage's scores around "
                        "each pair (the score_graph features), cross-validated by a nested P1 "
                        "(default; --no-stack: the first stage alone)")
    p.add_argument("--weight-by-group-size", action="store_true",
                   help="weight pairs by 1/|true group| so every posting counts about equally")
    p.add_argument("--postprocess", default=DEFAULT_POSTPROCESS,
                   help="post-processing steps to tune on the out-of-fold scores and apply, "
                        f"always in the order {DEFAULT_POSTPROCESS} (default: all; 'threshold' "
                        "alone is the plain cut)")
    p.set_defaults(run=run_train_ranker)

    p = sub.add_parser("train-embedder", help="ArcFace-train a text or image embedder")
    p.add_argument("--modality", choices=["text", "image"], required=True)
    p.add_argument("--postings", required=True, help="labelled postings CSV or parquet")
    p.add_argument("--images", help="image folder (image modality)")
    p.add_argument("--out", required=True, help="folder for checkpoints and out-of-fold vectors")
    p.add_argument("--oof", action="store_true",
                   help="protocol P2: train per fold, write out-of-fold vectors to OUT/oof")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--max-steps", type=int, help="stop each training after this many steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4, help="encoder learning rate (AdamW)")
    p.add_argument("--head-lr", type=float, default=3e-3)
    p.add_argument("--scale", type=float, default=30.0, help="ArcFace scale s")
    p.add_argument("--margin", type=float, default=0.5, help="ArcFace margin m (radians)")
    p.add_argument("--easy-margin", action="store_true")
    p.add_argument("--sam", action="store_true", help="sharpness-aware minimisation")
    p.add_argument("--device", default="auto", help="auto (CUDA where present), cpu, cuda")
    p.add_argument("--no-amp", action="store_true", help="full precision on CUDA")
    p.add_argument("--amp-dtype", choices=["float16", "bfloat16"], default="float16")
    p.add_argument("--model-path", help="text: a local sentence-transformers folder "
                                        "(default: the offline MiniLM)")
    p.add_argument("--max-seq-length", type=int, default=32)
    p.add_argument("--freeze-layers", type=int, default=4,
                   help="text: lowest transformer layers kept frozen (cached once)")
    p.add_argument("--backbone", default="tf_efficientnet_lite0", help="image: timm name")
    p.add_argument("--checkpoint", help="image: starting weights (safetensors or .pth)")
    p.add_argument("--pooling", choices=["avg", "gem"], default="gem")
    p.add_argument("--image-size", type=int, help="image: input size (default: backbone's)")
    p.set_defaults(run=run_train_embedder)

    p = sub.add_parser("ablate", help="out-of-fold F1 without each feature group and with each alone")
    p.add_argument("--work", required=True, help="work directory after `train-ranker`")
    p.add_argument("--backend", choices=["lightgbm", "xgboost"], default="lightgbm")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--negative-rate", type=float, default=0.25)
    p.add_argument("--symmetrise", choices=["mean", "max", "none"], default="mean")
    p.add_argument("--groups", help="comma-separated groups to ablate (default: every group)")
    p.add_argument("--stack", action=argparse.BooleanOptionalAction, default=True,
                   help="add the row 'with score_graph': the second-stage ranker on top of every "
                        "group (default; --no-stack: the first-stage rows only)")
    p.set_defaults(run=run_ablate)

    p = sub.add_parser("submit", help="match a new catalog with a trained model")
    p.add_argument("--postings", required=True)
    p.add_argument("--images")
    p.add_argument("--model", required=True, help="model folder (or the work dir holding it)")
    p.add_argument("--out", required=True, help="submission CSV to write")
    p.add_argument("--work", help="keep embeddings here (cache across runs) and write submit.json "
                   "(seconds per stage)")
    p.set_defaults(run=run_submit)

    p = sub.add_parser("evaluate", help="score a submission against labelled postings")
    p.add_argument("--postings", required=True)
    p.add_argument("--submission", required=True)
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("report", help="write an HTML run report with plots and match galleries")
    p.add_argument("--work", required=True, help="work directory written by `train-ranker`")
    p.add_argument("--out", help="HTML file to write (default WORK/report.html)")
    p.add_argument("--images", help="folder of the postings' images, for gallery thumbnails "
                                    "(default: the folder given to `candidates`)")
    p.add_argument("--cards", type=int, default=30,
                   help="postings in the galleries: a third worst false positives, a third "
                        "worst false negatives, the rest sampled (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled gallery postings")
    p.set_defaults(run=run_report)

    p = sub.add_parser("demo", help="run everything on a generated catalog and print its F1")
    p.add_argument("--work", default="runs/demo")
    p.add_argument("--products", type=int, default=600)
    p.add_argument("--k", type=int, default=50)
    p.set_defaults(run=run_demo)
    return parser


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a `kill` unwinds like Ctrl-C: temporary files are removed


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    for name, smallest in (("k", 1), ("folds", 2), ("products", 20), ("cards", 0),
                           ("blend_iterations", 1)):
        if getattr(args, name, smallest) < smallest:
            stderr.print(f"[red]error:[/red] --{name.replace('_', '-')} must be at least {smallest}")
            return 2
    if getattr(args, "stack", False) and args.folds < 3:
        # Its nested cross-validation trains first-stage models outside two folds at a time.
        stderr.print("[red]error:[/red] --folds must be at least 3 with the second stage "
                     "(or --no-stack)")
        return 2
    if not 0 < getattr(args, "negative_rate", 1.0) <= 1:
        stderr.print("[red]error:[/red] --negative-rate must be in (0, 1]")
        return 2
    if not 0 <= getattr(args, "filter_threshold", 0.0) < 1:
        stderr.print("[red]error:[/red] --filter-threshold must be in [0, 1) (0: no filter)")
        return 2
    try:
        args.run(args)
    except InputError as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        stderr.print("interrupted; finished artifacts are kept, partial ones were not written")
        return 130
    except OSError as exc:  # unreadable input or unwritable output (permissions, full disk)
        where = f"{exc.filename}: " if exc.filename else ""
        stderr.print(f"[red]error:[/red] {where}{exc.strerror or exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
