"""Feature-group ablation: P1 out-of-fold F1 without each group and with each group alone."""
from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from features import SCORE_GRAPH_FEATURES, SCORE_GRAPH_GROUP

from .cv import OutOfFold, out_of_fold_scores
from .stacking import stacked_out_of_fold_scores

log = logging.getLogger(__name__)


def ablate_groups(X: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray,
                  labels: np.ndarray, names: list[str], groups: dict[str, str],
                  make_ranker: Callable, evaluate: Callable[[np.ndarray], dict], n_folds: int = 5,
                  seed: int = 42, negative_rate: float = 1.0,
                  only: list[str] | None = None, second_stage: bool = False,
                  make_second: Callable | None = None) -> list[dict]:
    """Rows ``{variant, group, features, f1, precision, recall, delta_f1, seconds}``.

    ``evaluate`` turns out-of-fold scores into ``{"f1", "precision", "recall"}`` (the caller's
    post-processing); ``delta_f1`` is relative to the run with every group. ``only`` limits the
    ablated groups (default: every group). ``second_stage`` adds the row "with score_graph": the
    second-stage ranker (:mod:`ranker.stacking`, made by ``make_second``, default
    ``make_ranker``) on top of every group.
    """
    def row(variant: str, group: str, features: int, scores: np.ndarray, start: float) -> dict:
        done = {"variant": variant, "group": group, "features": features,
                **{k: round(float(v), 6) for k, v in evaluate(scores).items()},
                "seconds": round(time.perf_counter() - start, 3)}
        log.info(f"ablation {variant} {group}: F1 {done['f1']:.4f} ({features} features)")
        return done

    def run(variant: str, group: str, keep: list[str]) -> tuple[dict, OutOfFold]:
        start = time.perf_counter()
        columns = [names.index(name) for name in keep]
        oof = out_of_fold_scores(X[:, columns], y, i, j, labels, keep, make_ranker, n_folds,
                                 seed, negative_rate=negative_rate)
        return row(variant, group, len(keep), oof.scores, start), oof

    every = sorted(set(groups.values()), key=list(groups.values()).index)
    unknown = sorted(set(only or ()) - set(every))
    if unknown:
        raise ValueError(f"no features of groups {unknown}; groups: {every}")
    every_row, first = run("all", "all", names)
    rows = [every_row]
    if second_stage:
        start = time.perf_counter()
        stacked = stacked_out_of_fold_scores(X, y, i, j, labels, names, make_ranker, first,
                                             n_folds, seed, negative_rate=negative_rate,
                                             make_second=make_second)
        rows.append(row("with", SCORE_GRAPH_GROUP, len(names) + len(SCORE_GRAPH_FEATURES),
                        stacked.scores, start))
    for group in [g for g in every if only is None or g in only]:
        without = [n for n in names if groups[n] != group]
        if without:
            rows.append(run("without", group, without)[0])
        if len(every) > 1:
            rows.append(run("only", group, [n for n in names if groups[n] == group])[0])
    for done in rows:
        done["delta_f1"] = round(done["f1"] - rows[0]["f1"], 6)
    return rows


def ablation_markdown(rows: list[dict]) -> str:
    lines = ["| variant | group | features | F1 | ΔF1 | precision | recall |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['variant']} | {r['group']} | {r['features']} | {r['f1']:.4f} | "
              f"{r['delta_f1']:+.4f} | {r['precision']:.4f} | {r['recall']:.4f} |" for r in rows]
    return "\n".join(lines) + "\n"


def ablation_chart(rows: list[dict], path) -> None:
    """Horizontal bars of ΔF1 per group: 'without' (and 'with' the second stage) on the left,
    'only' on the right."""
    from matplotlib.figure import Figure

    from common.atomic import atomic_path

    fig = Figure(figsize=(11, 0.45 * len(rows) + 1.5))
    axes = fig.subplots(1, 2)
    for ax, variants, colour in ((axes[0], ("without", "with"), "#c0392b"),
                                 (axes[1], ("only",), "#2874a6")):
        part = [r for r in rows if r["variant"] in variants]
        ax.barh([f"{r['variant']} {r['group']}" if r["variant"] == "with" else r["group"]
                 for r in part], [r["delta_f1"] for r in part], color=colour)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"{' / '.join(variants)} the group: ΔF1 vs all ({rows[0]['f1']:.4f})")
        ax.invert_yaxis()
        for y_pos, r in enumerate(part):
            ax.annotate(f"{r['f1']:.4f}", (r["delta_f1"], y_pos), fontsize=8,
                        xytext=(3 if r["delta_f1"] >= 0 else -3, 0), textcoords="offset points",
                        ha="left" if r["delta_f1"] >= 0 else "right", va="center")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
