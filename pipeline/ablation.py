"""Feature-group ablation on a trained work directory (``python cli.py ablate``): P1 out-of-fold
F1 without each group and with each alone, on train-ranker's features and folds."""
from __future__ import annotations

from pathlib import Path

from common.atomic import read_json, read_parquet, write_json, write_text
from common.console import Timer
from common.errors import InputError
from common.folds import require_label_groups
from common.workdir import WorkDir
from embedders import create_embedder
from features import FeatureTable, view_columns
from postprocess import PostProcessor
from ranker import ablate_groups, ablation_chart, ablation_markdown

from .stages import check_made_from
from .settings import VIEW_DROPOUT
from .training import ranker_factory, training_pairs


def ablate_work_dir(root: str | Path, backend: str = "lightgbm", folds: int = 5, seed: int = 42,
                    negative_rate: float = 0.25, symmetrise: str = "mean",
                    groups: list[str] | None = None, stack: bool = True,
                    view_dropout: float = VIEW_DROPOUT) -> dict:
    """Run the ablation and write ``ablation.json``, ``ablation.md`` and ``ablation.png`` into
    the work directory; returns what ablation.json holds."""
    with WorkDir(root).lock():
        return _ablate(WorkDir(root), backend, folds, seed, negative_rate, symmetrise, groups,
                       stack, view_dropout)


def _ablate(work: WorkDir, backend: str, folds: int, seed: int, negative_rate: float,
            symmetrise: str, groups: list[str] | None, stack: bool,
            view_dropout: float) -> dict:
    timer = Timer()
    postings = read_parquet(work.postings, "candidates")
    frame = read_parquet(work.features, "train-ranker", ("i", "j"))
    report = read_json(work.features_report, "train-ranker")
    candidates = read_json(work.candidates_report, "candidates")
    if not (isinstance(report, dict) and isinstance(report.get("groups"), dict)
            and isinstance(candidates, dict)) or frame.height != report.get("pairs"):
        raise InputError("does not describe features.parquet; rerun `python cli.py "
                         "train-ranker`", file=str(work.features_report))
    check_made_from(work, candidates, {work.features: report})
    i, j = frame["i"].to_numpy(), frame["j"].to_numpy()
    if len(i) and max(i.max(), j.max()) >= postings.height:
        raise InputError("features of other candidates than this work directory's; rerun "
                         "`python cli.py train-ranker`", file=str(work.features))
    names = report["groups"]
    # features.json lists the groups by name; the boosters sample columns by position, so the
    # matrix keeps train-ranker's column order (the parquet's) and the all-groups row is its run.
    features = FeatureTable(frame, {name: names[name] for name in frame.columns if name in names})
    labels, i, j, y = training_pairs(features, postings)
    require_label_groups(labels, folds, candidates.get("postings") or str(work.postings))

    def evaluate(scores) -> dict:
        # The same threshold step (and 50-match cap) that train-ranker tunes first.
        final = PostProcessor(steps=["threshold"], symmetrise=symmetrise) \
            .fit(i, j, scores, labels).report_[-1]
        return {key: final[key] for key in ("f1", "precision", "recall")}

    # The rankers hide the photo features of some training pairs, as train-ranker's do.
    embedders = [create_embedder(spec["name"], **spec["config"])
                 for spec in candidates.get("embedders", [])]
    views = {"view_dropout": view_dropout,
             "view_columns": tuple(view_columns(features.names, embedders))}
    with timer.step("ablation"):
        rows = ablate_groups(features.matrix(), y, i, j, labels, features.names, names,
                             ranker_factory(backend, seed, **views), evaluate, folds, seed,
                             negative_rate, only=groups, second_stage=stack,
                             make_second=ranker_factory(backend, seed, stage=2, **views))
    result = {"rows": rows, "backend": backend, "folds": folds, "seed": seed,
              "negative_rate": negative_rate, "seconds": timer.total}
    write_json(work.root / "ablation.json", result)
    write_text(work.root / "ablation.md", ablation_markdown(rows))
    ablation_chart(rows, work.root / "ablation.png")
    return result
