"""The HTML run report: contents and figures on a generated run, reproducibility, bad input, and
a real-data run (a Shopee train subset with its images) rendered in headless Chromium."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.chromium import assert_not_blank, needs_chromium, render_page
from tests.conftest import run_cli, train_work

SUBSET_POSTINGS = 500


def _report(work: Path, out: Path, *extra: str) -> str:
    done = run_cli("report", "--work", str(work), "--out", str(out), *extra)
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stderr
    return out.read_text(encoding="utf-8")


def test_report_shows_the_run(generated_run, tmp_path):
    page = _report(generated_run, tmp_path / "r.html", "--cards", "12")
    metrics = json.loads((generated_run / "metrics.json").read_text())
    # the post-processing re-applied to the out-of-fold scores reproduces train-ranker's figures
    headline = re.search(r"<b>([0-9.]+)</b>F1 \(out of fold\)", page)
    assert headline and headline.group(1) == f"{metrics['f1']:.4f}"
    for section in ("Run summary", "Scores by true group size", "F1 against threshold",
                    "Score distributions", "Group sizes, predicted and true",
                    "Feature importance", "Feature-group ablation", "Galleries"):
        assert section in page
    assert page.count("<svg") >= 4
    assert "<script" not in page  # nothing to fail in the browser
    assert not re.search(r'(src|href)="(https?:)?//|url\((?!#)', page)  # self-contained
    cards = re.findall(r'<article class="card (\w+)">', page)
    assert len(cards) == 12
    # the worst mistakes come first, then the sample
    order = {"fp": 0, "fn": 1, "sample": 2}
    assert [order[c] for c in cards] == sorted(order[c] for c in cards)
    assert "sample" in cards
    assert re.search(r'<ul class="contrib"><li>\w+ = ', page)  # pred_contrib per pair


def test_group_size_rows_add_up_to_the_overall_figures(generated_run):
    from report.run import apply_postprocess, load_run, scores_by_group_size

    from postprocess import PostProcessor

    run = load_run(generated_run)
    matches = apply_postprocess(run)
    schema = json.loads((generated_run / "model" / "schema.json").read_text())
    kept_i, kept_j, _ = PostProcessor.from_params(schema["postprocess"]).predict(
        run.i, run.j, run.p, run.n)
    candidates = set(zip(run.i.tolist(), run.j.tolist()))
    assert set(zip(run.i[matches.keep].tolist(), run.j[matches.keep].tolist())) == \
        {pair for pair in zip(kept_i.tolist(), kept_j.tolist()) if pair in candidates}
    assert matches.f1.mean() == pytest.approx(run.metrics["f1"], abs=1e-6)
    rows = scores_by_group_size(matches)
    overall, buckets = rows[0], [r for r in rows[1:] if r["postings"]]
    assert sum(r["postings"] for r in buckets) == overall["postings"] == run.n
    for key in ("f1", "precision", "recall"):
        weighted = sum(r[key] * r["postings"] for r in buckets) / run.n
        assert weighted == pytest.approx(overall[key], abs=1e-9)
    assert [r["size"] for r in rows[1:]][-4:] == ["2", "3–5", "6–10", "> 10"]


def test_report_is_reproducible(generated_run, tmp_path):
    from report import build_report

    first = build_report(generated_run, tmp_path / "a.html", cards=6, seed=1)
    second = build_report(generated_run, tmp_path / "b.html", cards=6, seed=1)
    assert first.bytes == second.bytes
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_ablation_is_shown_when_present(generated_run, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(generated_run, work)
    (work / "ablation.json").write_text(json.dumps({"backend": "lightgbm", "rows": [
        {"dropped": "phash", "f1": 0.71}, {"dropped": "graph", "f1": 0.74}]}))
    from report import build_report

    build_report(work, tmp_path / "r.html", cards=3)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<th>dropped</th>" in page and "<td>graph</td>" in page
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    (work / "ablation.png").write_bytes(buffer.getvalue())
    build_report(work, tmp_path / "r.html", cards=3)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'alt="ablation chart" src="data:image/png;base64,' in page
    assert "<td>graph</td>" in page  # the chart and the figures behind it


@pytest.mark.parametrize("damage", ["oof_scores.parquet", "model/schema.json", "metrics.json"])
def test_missing_or_broken_artifacts_are_clear_errors(generated_run, tmp_path, damage):
    work = tmp_path / "w"
    shutil.copytree(generated_run, work)
    if damage == "metrics.json":
        (work / damage).write_text("{not json")
    else:
        (work / damage).unlink()
    out = tmp_path / "r.html"
    done = run_cli("report", "--work", str(work), "--out", str(out))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert damage.split("/")[-1] in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


# ----------------------------------------------------------------------------- headless Chromium

@needs_chromium
def test_the_browser_check_catches_errors_and_blank_pages(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><p>text</p><script>console.error('bad');"
                      "undefinedFunction();</script></body></html>")
    errors, png = render_page(broken, tmp_path / "profile")
    assert any("bad" in e for e in errors) and any("undefinedFunction" in e for e in errors)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    errors, png = render_page(blank, tmp_path / "profile")
    assert errors == []
    with pytest.raises(AssertionError):
        assert_not_blank(png, min_height=1)


@pytest.fixture(scope="module")
def shopee_subset_run(shopee_train, shopee_dir, tmp_path_factory) -> Path:
    """A P1 run over whole Shopee train label groups: every group with an image in the data folder
    plus seeded groups up to about SUBSET_POSTINGS postings; candidates get the images folder."""
    images = shopee_dir / "train_images"
    on_disk = {p.name for p in images.glob("*.jpg")} if images.is_dir() else set()
    pictured = shopee_train.filter(pl.col("image").is_in(sorted(on_disk)))["label_group"]
    sizes = shopee_train.group_by("label_group").len().sort("label_group")
    order = np.random.default_rng(3).permutation(sizes.height)
    cumulative = np.cumsum(sizes["len"].to_numpy()[order])
    drawn = sizes["label_group"].to_numpy()[order[: int(np.searchsorted(cumulative,
                                                                         SUBSET_POSTINGS))]]
    chosen = sorted(set(drawn.tolist()) | set(pictured.to_list()))
    root = tmp_path_factory.mktemp("shopee-report")
    shopee_train.filter(pl.col("label_group").is_in(chosen)).write_csv(root / "subset.csv")
    extra = ("--images", str(images)) if on_disk else ()
    return train_work(root, root / "subset.csv", *extra)


@needs_chromium
def test_shopee_report_renders_in_chromium(shopee_subset_run, tmp_path):
    out = tmp_path / "report.html"
    done = run_cli("report", "--work", str(shopee_subset_run), "--out", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert out.stat().st_size < 20e6
    assert "data:image/jpeg;base64," in page  # the real images became thumbnails
    errors, png = render_page(out, tmp_path / "profile")
    assert errors == []
    assert_not_blank(png, min_height=3000)
    shot = os.environ.get("REPORT_SCREENSHOT")  # where a maintainer wants the PNG kept
    if shot:
        Path(shot).write_bytes(png)
