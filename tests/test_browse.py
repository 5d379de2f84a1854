"""The browse page: every posting's out-of-fold matches (or a submission's) in one self-contained
HTML page, searched by id and title words in headless Chromium through the DevTools protocol;
the submission mode, sampling, the size limits and bad input."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from common.errors import InputError
from tests.chromium import Page, needs_chromium, open_page
from tests.conftest import run_cli

SEARCH_MS = 200  # the slowest search (index look-up and result list) the page may take


def _browse(*args: str) -> str:
    done = run_cli("browse", *args)
    assert done.returncode == 0, done.stderr
    assert "browse:" in done.stderr
    out = Path(args[args.index("--out") + 1])
    return out.read_text(encoding="utf-8")


def _data(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="browse-data">(.*?)</script>', page,
                      re.S)
    return json.loads(block.group(1))


def _truth(work: Path) -> tuple[list[str], dict[str, set[str]], dict[str, set[str]]]:
    """Posting ids, each posting's predicted matches from apply_postprocess's kept pairs (graph
    merges included), and its true matches (self excluded from both)."""
    from report.run import apply_postprocess, load_run

    run = load_run(work)
    matches = apply_postprocess(run)
    ids = run.postings["posting_id"].to_list()
    predicted: dict[str, set[str]] = {pid: set() for pid in ids}
    for a, b in zip(matches.kept_i.tolist(), matches.kept_j.tolist()):
        predicted[ids[a]].add(ids[b])
    true = {pid: {ids[b] for b in np.flatnonzero(run.labels == run.labels[a])} - {pid}
            for a, pid in enumerate(ids)}
    return ids, predicted, true


def _self_contained(page: str) -> None:
    assert not re.search(r'(src|href)="(https?:)?//|url\((?!#)|<script[^>]* src=', page)
    assert "http://" not in page and "https://" not in page


# ----------------------------------------------------------------------------- in the browser

def _wait_for_posting(page: Page, posting: str) -> None:
    """Until the page shows ``posting`` (navigation through the hash is asynchronous)."""
    shown = page.evaluate(
        "new Promise((resolve) => { const start = performance.now(); (function check() {"
        " const id = document.getElementById('posting').dataset.id;"
        f" if (id === {json.dumps(posting)} || performance.now() - start > 5000) resolve(id);"
        " else setTimeout(check, 10); })(); })")
    assert shown == posting


def _search(page: Page, text: str) -> float:
    """Type ``text`` into the emptied search box; the page's own timing of that search."""
    page.evaluate("(() => { const box = document.getElementById('search'); box.value = '';"
                  " box.focus(); })()")
    page.type(text)
    return page.evaluate("window.browse.lastSearchMs")


def _shown(page: Page, box: str, kind: str = "") -> list[str]:
    return page.evaluate(f"Array.from(document.querySelectorAll('#{box} figure{kind}'))"
                         ".map((figure) => figure.dataset.id)")


def _check_shown_group(page: Page, posting: str, predicted: set[str], true: set[str]) -> None:
    assert _shown(page, "posting", ".query") == [posting]
    shown = _shown(page, "predicted")
    assert len(shown) == len(set(shown)) and set(shown) == predicted
    scores = page.evaluate("Array.from(document.querySelectorAll('#predicted .score'))"
                           ".map((score) => parseFloat(score.textContent))")
    assert len(scores) == len(shown) and scores == sorted(scores, reverse=True)
    assert set(_shown(page, "predicted", ".bad")) == predicted - true        # false positives
    assert set(_shown(page, "truth")) == true
    assert set(_shown(page, "truth", ".missed")) == true - predicted          # false negatives


@needs_chromium
def test_search_by_id_and_title_word_shows_the_runs_matches(generated_run, tmp_path):
    out = tmp_path / "browse.html"
    page_text = _browse("--work", str(generated_run), "--out", str(out))
    _self_contained(page_text)
    ids, predicted, true = _truth(generated_run)
    # a posting with a wrong or a missed match, the largest such group
    posting = max(ids, key=lambda p: (predicted[p] != true[p], len(predicted[p]), p))
    assert predicted[posting] != true[posting]
    other = next(p for p in ids if p != posting and true[p] != true[posting])
    word = re.findall(r"[^\W_]+", _data(page_text)["titles"][ids.index(other)].lower())[-1]
    with open_page(out, tmp_path / "profile") as page:
        timings = [_search(page, posting)]  # an id opens its posting as it is typed
        _wait_for_posting(page, posting)
        _check_shown_group(page, posting, predicted[posting], true[posting])
        member = (_shown(page, "predicted") or _shown(page, "truth"))[0]
        page.evaluate(f"document.querySelector('figure[data-id={json.dumps(member)}] a.pid')"
                      ".click()")
        _wait_for_posting(page, member)  # a match links to its own group ...
        page.evaluate("history.back()")
        _wait_for_posting(page, posting)  # ... and the back button returns

        timings.append(_search(page, word))
        assert ids.index(other) in page.evaluate(f"window.browse.search({json.dumps(word)})")
        results = page.evaluate("Array.from(document.querySelectorAll('#results a.pid'))"
                                ".map((a) => a.textContent)")
        titles = _data(page_text)["titles"]
        for result in results:  # each holds the word as a title token or a token's prefix
            tokens = re.findall(r"[^\W_]+", titles[ids.index(result)].lower())
            assert any(token.startswith(word) for token in tokens)
        page.press_enter()  # opens the first result
        _wait_for_posting(page, results[0])
        _check_shown_group(page, results[0], predicted[results[0]], true[results[0]])
        assert page.errors() == []
    assert max(timings) <= SEARCH_MS, timings


# ----------------------------------------------------------------------------- without a browser

def test_page_holds_every_postings_matches_and_is_reproducible(generated_run, tmp_path):
    from report import build_browse_page

    first = build_browse_page(generated_run, tmp_path / "a.html")
    second = build_browse_page(generated_run, tmp_path / "b.html")
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
    data = _data((tmp_path / "a.html").read_text(encoding="utf-8"))
    ids, predicted, true = _truth(generated_run)
    assert data["ids"] == ids and first.postings == second.postings == len(ids)
    assert {pid: {ids[j] for j in data["pred"][k]} for k, pid in enumerate(ids)} == predicted
    assert {pid: {ids[j] for j in data["missed"][k]} for k, pid in enumerate(ids)} == \
        {pid: true[pid] - predicted[pid] for pid in ids}
    assert first.pairs == sum(map(len, predicted.values()))
    for scores in data["score"]:  # best first
        assert scores == sorted(scores, reverse=True)
    assert data["featured"] and data["contrib"] and first.explained == len(data["contrib"])
    assert first.f1 == pytest.approx(json.loads((generated_run / "metrics.json").read_text())["f1"],
                                     abs=1e-6)


def _submission(work: Path, path: Path) -> tuple[list[str], list[str]]:
    """Write a submission over the run's postings: each posting, itself, its true group in
    reverse order and the next posting (often a wrong match); its ids and matches columns."""
    postings = pl.read_parquet(work / "postings.parquet")
    ids = postings["posting_id"].to_list()
    labels = postings["label_group"].to_list()
    rows = [" ".join([pid] + [ids[m] for m in range(len(ids) - 1, -1, -1)
                              if labels[m] == labels[k] and m != k] + [ids[(k + 1) % len(ids)]])
            for k, pid in enumerate(ids)]
    pl.DataFrame({"posting_id": ids, "matches": rows}).write_csv(path)
    return ids, rows


@needs_chromium
def test_unlabelled_submission_page_in_chromium(generated_run, tmp_path):
    work = tmp_path / "w"  # the postings of a `candidates` run on an unlabelled catalog
    work.mkdir()
    pl.read_parquet(generated_run / "postings.parquet").drop("label_group").write_parquet(
        work / "postings.parquet")
    ids, rows = _submission(generated_run, tmp_path / "submission.csv")
    out = tmp_path / "browse.html"
    data = _data(_browse("--work", str(work), "--submission", str(tmp_path / "submission.csv"),
                         "--out", str(out)))
    assert "labels" not in data and "missed" not in data and "score" not in data
    posting = ids[7]
    with open_page(out, tmp_path / "profile") as page:
        assert _search(page, posting) <= SEARCH_MS
        _wait_for_posting(page, posting)
        assert _shown(page, "predicted") == [m for m in rows[7].split(" ") if m != posting]
        assert _shown(page, "truth") == []
        assert page.errors() == []


def test_submission_mode_shows_the_submissions_matches(generated_run, tmp_path):
    submission = tmp_path / "submission.csv"
    ids, rows = _submission(generated_run, submission)
    out = tmp_path / "browse.html"
    page = _browse("--work", str(generated_run), "--submission", str(submission), "--out",
                   str(out))
    _self_contained(page)
    data = _data(page)
    for k, written in enumerate(rows):
        listed = list(dict.fromkeys(m for m in written.split(" ") if m != ids[k]))
        assert [ids[j] for j in data["pred"][k]] == listed  # the submission's own order
    assert "score" not in data and "contrib" in data and not data["contrib"]
    scored = run_cli("evaluate", "--postings", str(generated_run / "postings.parquet"),
                     "--submission", str(submission))
    assert np.mean(data["f1"]) == pytest.approx(json.loads(scored.stdout)["f1"], abs=1e-3)

    # a submission over other postings is refused, naming the file
    pl.DataFrame({"posting_id": ids[:-1] + ["elsewhere"], "matches": rows}).write_csv(submission)
    done = run_cli("browse", "--work", str(generated_run), "--submission", str(submission),
                   "--out", str(tmp_path / "other.html"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert str(submission) in done.stderr and "'elsewhere' is not in" in done.stderr
    assert not (tmp_path / "other.html").exists()


def test_sample_and_size_limits(generated_run, tmp_path, monkeypatch):
    from report import browse, build_browse_page

    ids, predicted, true = _truth(generated_run)
    monkeypatch.setattr(browse, "MAX_POSTINGS", 100)
    with pytest.raises(InputError, match=r"192 postings are over the 100 .*--sample N"):
        build_browse_page(generated_run, tmp_path / "all.html")
    assert not (tmp_path / "all.html").exists()
    result = build_browse_page(generated_run, tmp_path / "some.html", sample=5)
    data = _data((tmp_path / "some.html").read_text(encoding="utf-8"))
    assert result.postings == len(data["ids"]) < 100
    sampled = [data["ids"][r] for r, _ in data["featured"]]
    assert len(sampled) == 5
    for pid in sampled:  # a sampled posting's groups are whole on the page
        k = data["ids"].index(pid)
        assert {data["ids"][j] for j in data["pred"][k]} == predicted[pid]
        assert {data["ids"][j] for j in data["missed"][k]} == true[pid] - predicted[pid]

    monkeypatch.setattr(browse, "MAX_PAGE_BYTES", 1_000)
    with pytest.raises(InputError, match=r"MB, over the 0.001 MB limit of one page; narrow it "
                                         r"with --sample N"):
        build_browse_page(generated_run, tmp_path / "big.html", sample=5)
    assert not (tmp_path / "big.html").exists()


def test_missing_work_directory_is_one_line(tmp_path):
    for extra in ((), ("--submission", str(tmp_path / "s.csv"))):
        done = run_cli("browse", "--work", str(tmp_path / "absent"), *extra)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert str(tmp_path / "absent") in done.stderr
    done = run_cli("browse", "--work", str(tmp_path), "--sample", "0")
    assert done.returncode == 2 and "--sample must be at least 1" in done.stderr


def test_report_links_to_the_browse_page(generated_run, tmp_path):
    from report import build_browse_page, build_report

    work = tmp_path / "w"
    shutil.copytree(generated_run, work)
    build_report(work, tmp_path / "before.html", cards=3)
    assert "browse every posting" not in (tmp_path / "before.html").read_text(encoding="utf-8")
    assert build_browse_page(work).path == work / "browse.html"
    build_report(work, tmp_path / "after.html", cards=3)
    page = (tmp_path / "after.html").read_text(encoding="utf-8")
    assert '<a href="w/browse.html">browse every posting' in page
    build_report(work, cards=3)  # beside it, in the work directory
    assert '<a href="browse.html">' in (work / "report.html").read_text(encoding="utf-8")
