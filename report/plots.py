"""The report's plots, drawn on matplotlib Figure objects (no pyplot) and returned as inline
SVG text.

Every input is already reduced to a few hundred numbers (histogram counts, a curve) before it
reaches matplotlib, so plotting costs the same for 3 000 or 3 million pairs. SVG ids are salted
with a constant and the date is left out, so the same run gives the same bytes.
"""
from __future__ import annotations

import io
import re
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import polars as pl

TRUE_COLOUR = "#2a9d8f"
FALSE_COLOUR = "#e76f51"
PREDICTED_COLOUR = "#264653"
GROUP_COLOURS = ("#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8d99ae", "#6d597a",
                 "#b5838d")


@contextmanager
def _figure(width: float, height: float) -> Iterator[tuple]:
    import matplotlib
    from matplotlib.figure import Figure

    style = {"svg.hashsalt": "listing-matcher-report", "svg.fonttype": "none",
             "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
             "axes.grid": True, "grid.alpha": 0.3}
    with matplotlib.rc_context(style):
        # A Figure of its own, not pyplot's: no global figure list, no backend switch in the
        # caller's session (a notebook keeps its inline backend).
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig, fig.subplots()


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prologue and doctype: inline in HTML
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)


def threshold_curve(curve: list[list[float]], threshold: float) -> str:
    """F1 of the out-of-fold matches against the threshold, the chosen one marked."""
    values = np.asarray([row[:2] for row in curve], dtype=np.float64).reshape(-1, 2)
    with _figure(5.2, 3.0) as (fig, ax):
        ax.plot(values[:, 0], values[:, 1], color=PREDICTED_COLOUR, lw=1.6)
        ax.axvline(threshold, color=FALSE_COLOUR, ls="--", lw=1)
        if len(values):
            best = values[np.argmin(np.abs(values[:, 0] - threshold))]
            ax.annotate(f"threshold {threshold:.2f}\nF1 {best[1]:.4f}", (best[0], best[1]),
                        xytext=(8, -28), textcoords="offset points", fontsize=8)
        ax.set(xlabel="threshold on the pair score", ylabel="mean per-posting F1",
               xlim=(0, 1))
        return _svg(fig)


def score_distributions(score: np.ndarray, same: np.ndarray, threshold: float,
                        bins: int = 50) -> str:
    """Histograms of the pair score for true and false candidate pairs (log counts)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    true_counts, _ = np.histogram(score[same], edges)
    false_counts, _ = np.histogram(score[~same], edges)
    with _figure(5.2, 3.0) as (fig, ax):
        ax.stairs(false_counts, edges, fill=True, alpha=0.55, color=FALSE_COLOUR,
                  label=f"false pairs ({int((~same).sum()):,})")
        ax.stairs(true_counts, edges, fill=True, alpha=0.55, color=TRUE_COLOUR,
                  label=f"true pairs ({int(same.sum()):,})")
        ax.axvline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.2f}")
        if true_counts.any() or false_counts.any():
            ax.set_yscale("log")
        ax.set(xlabel="pair score (out of fold)", ylabel="candidate pairs", xlim=(0, 1))
        ax.legend(frameon=False, fontsize=8)
        return _svg(fig)


def group_sizes(true_size: np.ndarray, pred_size: np.ndarray, largest: int = 20) -> str:
    """How many postings have each true and each predicted group size (self included)."""
    sizes = np.arange(1, largest + 2)
    true_counts = np.bincount(np.minimum(true_size, largest + 1), minlength=largest + 2)[1:]
    pred_counts = np.bincount(np.minimum(pred_size, largest + 1), minlength=largest + 2)[1:]
    with _figure(5.2, 3.0) as (fig, ax):
        ax.bar(sizes - 0.2, true_counts, width=0.4, color=TRUE_COLOUR, label="true")
        ax.bar(sizes + 0.2, pred_counts, width=0.4, color=PREDICTED_COLOUR, label="predicted")
        ax.set_xticks(sizes, [str(s) for s in sizes[:-1]] + [f"{largest + 1}+"], fontsize=7)
        ax.set(xlabel="group size (self included)", ylabel="postings")
        if true_counts.any() or pred_counts.any():
            ax.set_yscale("log")
        ax.legend(frameon=False, fontsize=8)
        return _svg(fig)


def feature_importance(importance: pl.DataFrame, top: int = 20) -> str:
    """The largest total gains of the final model, coloured by feature group."""
    shown = importance.sort("gain", descending=True).head(top).reverse()
    groups = sorted(set(importance["group"].to_list()))
    colour = {g: GROUP_COLOURS[k % len(GROUP_COLOURS)] for k, g in enumerate(groups)}
    with _figure(5.2, max(2.0, 0.2 * shown.height + 0.8)) as (fig, ax):
        ax.barh(np.arange(shown.height), shown["gain"].to_numpy(),
                color=[colour[g] for g in shown["group"].to_list()])
        ax.set_yticks(np.arange(shown.height), shown["feature"].to_list(), fontsize=7)
        ax.set(xlabel="total gain (final model)")
        ax.grid(axis="y", visible=False)
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=colour[g], label=g) for g in groups], frameon=False,
                  fontsize=7, loc="lower right")
        return _svg(fig)
