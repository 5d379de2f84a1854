"""Assemble the report: load the run, re-apply post-processing, draw, pick the gallery, write."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from common.atomic import write_text
from common.console import Timer
from common.errors import InputError
from pipeline import ParameterError

from . import gallery, plots
from .browse import BROWSE_PAGE
from .html import render
from .run import apply_postprocess, load_run, recorded_images, scores_by_group_size

DEFAULT_CARDS = 30


@dataclass(frozen=True)
class ReportResult:
    path: Path
    bytes: int
    postings: int
    pairs: int
    cards: int
    thumbnails: int
    f1: float
    seconds: dict


def build_report(work: str | Path, out: str | Path | None = None, images: str | Path | None = None,
                 cards: int = DEFAULT_CARDS, seed: int = 0) -> ReportResult:
    """Write the HTML report of the run in ``work`` to ``out`` (default ``work/report.html``).

    ``images`` is the folder of the postings' image files (default: the one ``candidates`` was
    given, when it still exists); without it the galleries show titles only. ``cards`` postings
    get a gallery card, the worst false positives and false negatives first; ``seed`` fixes the
    sampled rest. The same run and arguments give byte-identical HTML.
    """
    if cards < 0:
        raise ParameterError("cards", "must be at least 0")
    if images is not None and not Path(images).is_dir():
        raise InputError("not a folder", file=str(images))
    timer = Timer()
    with timer.step("load"):
        run = load_run(work)
    out = Path(out) if out else run.work.root / "report.html"
    if images is None:
        images = recorded_images(run.candidates)
    with timer.step("postprocess"):
        matches = apply_postprocess(run)
        by_size = scores_by_group_size(matches)
    with timer.step("plots"):
        figures = {
            "F1 against threshold": plots.threshold_curve(
                run.metrics.get("threshold_curve", []), matches.threshold),
            "Score distributions": plots.score_distributions(matches.score, matches.same,
                                                             matches.threshold),
            "Group sizes, predicted and true": plots.group_sizes(matches.true_size,
                                                                 matches.pred_size),
            "Feature importance": plots.feature_importance(run.importance),
        }
    with timer.step("gallery"):
        chosen = gallery.select_cards(run, matches, cards, seed)
        gallery.explain(chosen, run)
        shown = [c.query for c in chosen] + [p.posting for c in chosen
                                             for p in c.members + c.missed]
        thumbs = gallery.thumbnails(run.postings, shown, Path(images) if images else None)
    with timer.step("write"):
        browse = run.work.root / BROWSE_PAGE  # `browse`'s page, linked where it was written
        link = (quote(Path(os.path.relpath(browse.resolve(), out.resolve().parent)).as_posix())
                if browse.is_file() else None)
        page = render(run, matches, by_size, figures, chosen, thumbs, images, link)
        write_text(out, page)
    return ReportResult(path=out, bytes=len(page.encode("utf-8")), postings=run.n,
                        pairs=len(run.i), cards=len(chosen), thumbnails=len(thumbs),
                        f1=by_size[0]["f1"], seconds={**timer.seconds, "total": timer.total})
