"""The browse page: one self-contained HTML file in which any posting's matches can be looked up.

The run report shows a few dozen chosen postings; someone debugging a run also wants the one a
colleague names in a ticket. This page carries every posting's predicted group (the run's
out-of-fold matches, exactly the sets train-ranker's figures count, or the matches of any
submission over the work directory's postings), with the true group beside it where there are
labels, and searches posting ids and title words in the browser as one types. No server and
nothing fetched: it opens from a file:// URL and can be attached to a ticket.

The data travels as one JSON block of row lists and scores rounded to 3 decimals; the page's
script builds its search index when it loads. Feature contributions cost the model over every
explained pair, so only a bounded set of postings (the run report's gallery selection) gets
them; thumbnails stop at a byte bound.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import polars as pl

from common.atomic import read_json, read_parquet, write_text
from common.console import Timer
from common.errors import InputError
from common.metric import per_posting_scores, read_submission, submission_pairs
from common.pairs import find_pairs, pair_keys
from common.postings import has_labels, label_codes
from common.text import display_titles
from common.workdir import WorkDir
from pipeline import ParameterError

from . import gallery
from .html import CSS
from .run import Matches, Run, apply_postprocess, load_run, recorded_images

BROWSE_PAGE = "browse.html"      # its default name in the work directory; the report links it
MAX_POSTINGS = 200_000           # postings one page may hold (more: refused, before any work)
MAX_PAGE_BYTES = 25_000_000      # a page beyond this is refused: browsers open it too slowly
MAX_THUMBNAIL_BYTES = 4_000_000  # thumbnails stop here (about a thousand postings)
EXPLAINED_POSTINGS = 60          # postings whose pairs get feature contributions
TITLE_CHARS = 300                # longer titles are cut on the page (and in its search)
NARROW = "narrow it with --sample N (a seeded sample of N postings' groups)"


@dataclass(frozen=True)
class BrowseResult:
    path: Path
    bytes: int
    postings: int        # on the page
    catalog: int         # in the work directory
    pairs: int           # predicted pairs on the page
    explained: int       # postings whose pairs show feature contributions
    thumbnails: int
    f1: float | None     # mean per-posting F1 over the catalog, where there are labels
    seconds: dict


@dataclass
class _Listing:
    """What the page can show, in catalog rows: the predicted pairs grouped by query in display
    order (best first) and, with labels, the true pairs that were not predicted."""

    source: str
    n: int                           # postings in the catalog
    i: np.ndarray
    j: np.ndarray
    score: np.ndarray | None         # per predicted pair: the post-processed score
    model: np.ndarray | None         # per predicted pair: the symmetrised model score (NaN:
    #                                  not a candidate pair, added by the graph merge)
    labels: np.ndarray | None
    f1: np.ndarray | None            # per posting
    missed_i: np.ndarray | None = None
    missed_j: np.ndarray | None = None
    missed_model: np.ndarray | None = None


def build_browse_page(work: str | Path, out: str | Path | None = None,
                      submission: str | Path | None = None, sample: int | None = None,
                      images: str | Path | None = None, seed: int = 0) -> BrowseResult:
    """Write the browse page of the work directory ``work`` to ``out`` (default
    ``work/browse.html``).

    Without ``submission`` the page shows the out-of-fold matches of a finished `train-ranker`
    run; with it, that submission CSV's matches over the work directory's postings (refused when
    it lists other postings). ``sample`` keeps a ``seed``-ed sample of that many postings with
    every member of their predicted and true groups; a catalog over :data:`MAX_POSTINGS`
    postings or a page over :data:`MAX_PAGE_BYTES` is refused. ``images`` is the folder of the
    postings' images (default: the one given to `candidates`, when it still exists). The same
    inputs give a byte-identical page.
    """
    if sample is not None and sample < 1:
        raise ParameterError("sample", "must be at least 1")
    if images is not None and not Path(images).is_dir():
        raise InputError("not a folder", file=str(images))
    timer = Timer()
    with timer.step("load"):
        run = load_run(work) if submission is None else None
        folder = run.work if run is not None else _work_dir(work)
        if run is None:
            folder.check_not_writing()
        postings = run.postings if run is not None else read_parquet(folder.postings,
                                                                     "candidates")
    if sample is None:  # refused before the costly steps
        _check_postings(postings.height, folder.postings)
    with timer.step("matches"):
        matches = apply_postprocess(run) if run is not None else None
        listing = (_run_listing(run, matches) if run is not None
                   else _submission_listing(postings, Path(submission), folder.postings))
        rows, sampled = _page_rows(listing, sample, seed)
        _check_postings(len(rows), folder.postings)
    with timer.step("explain"):
        if len(sampled):
            featured = [(int(q), "sample") for q in sampled[:EXPLAINED_POSTINGS]]
        elif matches is not None:
            featured = [(card.query, card.reason) for card in
                        gallery.select_cards(run, matches, EXPLAINED_POSTINGS, seed)]
        else:
            featured = _weakest(listing)
        explained = (_explained(run, listing, [q for q, _ in featured]) if run is not None
                     else {})
    with timer.step("thumbnails"):
        thumbs = _thumbnails(postings, folder, images, rows, listing, featured)
    with timer.step("write"):
        data = _page_data(postings, listing, rows, featured, explained, thumbs)
        facts = _facts(listing, data, sample)
        page = _render(folder.root.resolve().name, facts, _about(listing, len(explained)), data)
        size = len(page.encode("utf-8"))
        if size > MAX_PAGE_BYTES:
            raise InputError(f"the page would take {size / 1e6:.1f} MB, over the "
                             f"{MAX_PAGE_BYTES / 1e6:g} MB limit of one page; {NARROW}",
                             file=str(folder.postings))
        out = Path(out) if out else folder.root / BROWSE_PAGE
        write_text(out, page)
    return BrowseResult(path=out, bytes=size, postings=len(rows), catalog=listing.n,
                        pairs=sum(map(len, data["pred"])), explained=len(explained),
                        thumbnails=len(thumbs),
                        f1=float(listing.f1.mean()) if listing.f1 is not None else None,
                        seconds={**timer.seconds, "total": timer.total})


def _work_dir(work: str | Path) -> WorkDir:
    folder = WorkDir(work)
    if not folder.root.is_dir():
        raise InputError("not a folder", file=str(folder.root))
    return folder


def _check_postings(count: int, postings_file: Path) -> None:
    if count > MAX_POSTINGS:
        raise InputError(f"{count:,} postings are over the {MAX_POSTINGS:,} one page may hold; "
                         f"{NARROW}", file=str(postings_file))


# ----------------------------------------------------------------------------- the matches

def _run_listing(run: Run, matches: Matches) -> _Listing:
    """The run's out-of-fold match sets as `submit` would list them: every predicted pair
    (graph-merged ones included) by descending post-processed score."""
    order = np.lexsort((matches.kept_j, -matches.kept_score, matches.kept_i))
    i = matches.kept_i[order].astype(np.int64)
    j = matches.kept_j[order].astype(np.int64)
    missed_i, missed_j = _missed(i, j, run.labels)
    missed_model = _model_scores(run, matches.score, missed_i, missed_j)
    # best-scored misses first, pairs that were never candidates last
    order_missed = np.lexsort((missed_j, -np.nan_to_num(missed_model, nan=-1.0), missed_i))
    return _Listing(source="out-of-fold matches", n=run.n, i=i, j=j,
                    score=matches.kept_score[order], model=_model_scores(run, matches.score, i, j),
                    labels=run.labels, f1=matches.f1, missed_i=missed_i[order_missed],
                    missed_j=missed_j[order_missed], missed_model=missed_model[order_missed])


def _model_scores(run: Run, score: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The symmetrised model score of each pair (i, j); NaN where it was no candidate pair."""
    position = find_pairs(run.i, run.j, i, j, run.n)
    found = np.full(len(i), np.nan, np.float32)
    found[position >= 0] = score[position[position >= 0]]
    return found


def _missed(i: np.ndarray, j: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The true pairs (a posting, another member of its label group) that are not predicted,
    by posting."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    start = np.searchsorted(ordered, ordered, "left")
    size = np.searchsorted(ordered, ordered, "right") - start
    query = np.repeat(order, size)
    within = np.arange(len(query)) - np.repeat(np.cumsum(size) - size, size)
    member = order[np.repeat(start, size) + within]
    n = len(labels)
    keep = (query != member) & ~np.isin(pair_keys(query, member, n), pair_keys(i, j, n))
    by_query = np.lexsort((member[keep], query[keep]))
    return query[keep][by_query], member[keep][by_query]


def _submission_listing(postings: pl.DataFrame, path: Path, postings_file: Path) -> _Listing:
    """The matches a submission lists, in its order (best first as `submit` writes them),
    without self and repeats; scored as written where the postings have labels."""
    query, match = submission_pairs(postings["posting_id"], read_submission(path), str(path),
                                    str(postings_file))
    n = postings.height
    _, first = np.unique(pair_keys(query, match, n), return_index=True)
    first = np.sort(first)
    first = first[query[first] != match[first]]
    order = first[np.argsort(query[first], kind="stable")]
    i, j = query[order].astype(np.int64), match[order].astype(np.int64)
    listing = _Listing(source=f"matches of {path.name}", n=n, i=i, j=j, score=None,
                       model=None, labels=None, f1=None)
    if has_labels(postings):
        listing.labels = label_codes(postings)
        listing.f1 = per_posting_scores(query, match, listing.labels, include_self=False)[0]
        listing.missed_i, listing.missed_j = _missed(i, j, listing.labels)
    return listing


def _page_rows(listing: _Listing, sample: int | None, seed: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The catalog rows on the page (sorted) and the sampled ones (in the sample's order): all
    postings, or ``sample`` seeded ones with every member of their predicted and true groups."""
    n = listing.n
    every = np.arange(n, dtype=np.int64)
    if sample is None or sample >= n:
        return every, every[:0]
    sampled = np.random.default_rng(seed).permutation(n)[:sample].astype(np.int64)
    inside = np.zeros(n, dtype=bool)
    inside[sampled] = True
    parts = [sampled, listing.j[inside[listing.i]]]
    if listing.labels is not None:
        parts.append(every[np.isin(listing.labels, listing.labels[sampled])])
    return np.unique(np.concatenate(parts)), sampled


def _weakest(listing: _Listing) -> list[tuple[int, str]]:
    """A submission's postings to start from: the lowest F1 with labels, else the largest
    predicted groups."""
    every = np.arange(listing.n)
    if listing.f1 is not None:
        order, reason = np.lexsort((every, listing.f1)), "lowest F1"
    else:
        order = np.lexsort((every, -np.bincount(listing.i, minlength=listing.n)))
        reason = "largest predicted group"
    return [(int(q), reason) for q in order[:EXPLAINED_POSTINGS]]


def _explained(run: Run, listing: _Listing, postings: list[int]
               ) -> dict[int, dict[int, list[tuple[str, float, float]]]]:
    """Feature contributions of the candidate pairs (predicted and missed) of ``postings``:
    posting → other end → (feature, contribution, value), largest first."""
    wanted = np.isin(listing.i, postings)
    missed = np.isin(listing.missed_i, postings)
    i = np.concatenate([listing.i[wanted], listing.missed_i[missed]])
    j = np.concatenate([listing.j[wanted], listing.missed_j[missed]])
    position = find_pairs(run.i, run.j, i, j, run.n)
    found = gallery.contributions(run, np.unique(position[position >= 0]))
    explained: dict[int, dict[int, list[tuple[str, float, float]]]] = {q: {} for q in postings}
    for q, other, row in zip(i.tolist(), j.tolist(), position.tolist()):
        if row >= 0:
            explained[q][other] = found[row]
    return explained


def _thumbnails(postings: pl.DataFrame, folder: WorkDir, images: str | Path | None,
                rows: np.ndarray, listing: _Listing, featured: list[tuple[int, str]]
                ) -> dict[int, str]:
    """Thumbnails of the featured postings and their groups first, then of the other postings
    in catalog order, until :data:`MAX_THUMBNAIL_BYTES`."""
    if images is None and folder.candidates_report.is_file():
        images = recorded_images(read_json(folder.candidates_report, "candidates"))
    if images is None:
        return {}
    first = [q for q, _ in featured]
    wanted = first + listing.j[np.isin(listing.i, first)].tolist()
    if listing.missed_i is not None:
        wanted += listing.missed_j[np.isin(listing.missed_i, first)].tolist()
    return gallery.thumbnails(postings, wanted + rows.tolist(), Path(images),
                              max_bytes=MAX_THUMBNAIL_BYTES)


# ----------------------------------------------------------------------------- the page

def _page_data(postings: pl.DataFrame, listing: _Listing, rows: np.ndarray,
               featured: list[tuple[int, str]], explained: dict, thumbs: dict[int, str]
               ) -> dict:
    """The JSON the page's script reads, indexed by page row: ids, titles, and per posting its
    predicted members (page rows, best first) with their scores; with labels the label codes,
    per-posting F1, true group sizes and the missed true members."""
    m = len(rows)
    page_row = np.full(listing.n, -1, np.int64)
    page_row[rows] = np.arange(m)
    titles = display_titles(postings["title"].gather(rows)).to_list()  # escapes decoded
    data: dict = {
        "ids": postings["posting_id"].gather(rows).to_list(),
        "titles": [t if len(t) <= TITLE_CHARS else t[: TITLE_CHARS - 1] + "…" for t in titles]}
    shown = (page_row[listing.i] >= 0) & (page_row[listing.j] >= 0)
    query = page_row[listing.i[shown]]
    data["pred"] = _per_posting(query, page_row[listing.j[shown]].tolist(), m)
    if listing.score is not None:
        data["score"] = _per_posting(query, _rounded(listing.score[shown]), m)
        data["model"] = _per_posting(query, _rounded(listing.model[shown]), m)
    hidden = np.bincount(listing.i, minlength=listing.n)[rows] - np.bincount(query, minlength=m)
    if listing.labels is not None:
        data["labels"] = listing.labels[rows].tolist()
        data["groupSize"] = np.bincount(listing.labels).tolist()
        data["f1"] = _rounded(listing.f1[rows])
        seen = (page_row[listing.missed_i] >= 0) & (page_row[listing.missed_j] >= 0)
        missed = page_row[listing.missed_i[seen]]
        data["missed"] = _per_posting(missed, page_row[listing.missed_j[seen]].tolist(), m)
        if listing.missed_model is not None:
            data["missedModel"] = _per_posting(missed, _rounded(listing.missed_model[seen]), m)
    data["hidden"] = {str(k): int(h) for k, h in enumerate(hidden.tolist()) if h}
    names = sorted({name for pairs in explained.values() for found in pairs.values()
                    for name, _, _ in found})
    code = {name: k for k, name in enumerate(names)}
    data["features"] = names
    data["contrib"] = {
        str(page_row[q]): {str(page_row[other]): [x for name, c, value in found for x in (
            code[name], round(c, 2), float(f"{value:.4g}") if np.isfinite(value) else None)]
            for other, found in pairs.items()}
        for q, pairs in explained.items()}
    data["featured"] = [[int(page_row[q]), reason] for q, reason in featured]
    data["thumbs"] = {str(page_row[k]): uri for k, uri in sorted(thumbs.items())}
    return data


def _per_posting(query: np.ndarray, values: list, m: int) -> list[list]:
    """``values`` (one per pair, pairs grouped by query page row) as one list per posting."""
    bounds = np.concatenate([[0], np.cumsum(np.bincount(query, minlength=m))]).tolist()
    return [values[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _rounded(values: np.ndarray) -> list:
    """Scores rounded to 3 decimals; NaN (no score) becomes None, JSON's null."""
    return [None if v != v else v for v in np.round(values.astype(np.float64), 3).tolist()]


def _facts(listing: _Listing, data: dict, sample: int | None) -> str:
    on_page = len(data["ids"])
    parts = [listing.source]
    if sample is not None and on_page < listing.n:
        parts.append(f"a seeded sample of {sample:,} postings with their groups: {on_page:,} "
                     f"of the {listing.n:,} postings")
    else:
        parts.append(f"{on_page:,} postings")
    parts.append(f"{sum(map(len, data['pred'])):,} predicted pairs")
    if listing.f1 is not None:
        parts.append(f"mean F1 {listing.f1.mean():.4f}")
    return " · ".join(parts)


def _about(listing: _Listing, explained: int) -> str:
    """What the marks and numbers mean, and what the page leaves out."""
    if listing.score is not None:
        text = ("Matches are the run's out-of-fold predictions after the saved post-processing, "
                "exactly the sets train-ranker's F1 counts. Each predicted group is ordered by "
                "the post-processed score (shown); a tile's tooltip gives the model's "
                "symmetrised score, which pairs added by the graph merge do not have. Missed "
                "true matches show the model's score, or that they were never a candidate pair. "
                f"Feature contributions to the model's log-odds (feature = value, contribution) "
                f"are computed for the {explained:,} postings listed at the start only (the run "
                f"report's gallery selection or the first sampled postings): explaining a pair "
                f"runs the model over it, so the other postings show scores only.")
    else:
        text = ("Matches are listed in the submission's order (best first as submit writes "
                "them); a submission carries no scores.")
    if listing.labels is not None:
        text += (" ✓ same product, ✗ wrong: a false positive; in the true group, ✗ missed marks "
                 "a false negative.")
    return text + (" Every posting id links to its own group; the browser's back button "
                   "returns.")


def _render(name: str, facts: str, about: str, data: dict) -> str:
    # "<" only occurs inside JSON strings, where \u003c reads back the same: the block can
    # never close its <script> element early
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"),
                         allow_nan=False).replace("<", "\\u003c")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Browse matches: {escape(name)}</title><style>{CSS}{BROWSE_CSS}</style>"
            f"</head><body><header class=\"top\"><h1>Browse matches: {escape(name)}</h1>"
            f"<div class=\"note\">{escape(facts)}</div><div class=\"searchbar\">"
            "<input id=\"search\" type=\"search\" autocomplete=\"off\" spellcheck=\"false\" "
            "autofocus placeholder=\"posting id or title words\" aria-label=\"search postings\">"
            "<span id=\"count\" class=\"note\"></span><span id=\"timing\" class=\"note\"></span>"
            "</div><ol id=\"results\"></ol></header><main><section id=\"posting\"></section>"
            f"<p class=\"note about\">{escape(about)}</p></main>\n"
            f"<script type=\"application/json\" id=\"browse-data\">{payload}</script>\n"
            f"<script>{SCRIPT}</script></body></html>\n")


BROWSE_CSS = """
.searchbar { display: flex; gap: 14px; align-items: center; margin-top: 12px; flex-wrap: wrap; }
#search { flex: 1 1 420px; max-width: 640px; font: inherit; font-size: 16px; padding: 7px 10px;
          border: 1px solid #b9c3cc; border-radius: 6px; }
#results { margin: 8px 0 0; padding-left: 28px; max-height: 230px; overflow-y: auto;
           font-size: 13px; }
#results:empty { display: none; }
#results li, ul.start li { margin: 2px 0; }
a.pid { margin-right: 6px; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 20px;
           align-items: start; }
.columns h3 { margin: 14px 0 8px; }
.facts { margin: 6px 0 10px; font-size: 13px; }
figure.tile.plain { border-top: 4px solid var(--line); }
figure.tile figcaption a.pid { display: block; margin: 0; }
p.about { margin-top: 28px; max-width: 1100px; }
"""

# The page's script. It builds an inverted index of lowercased title tokens once, then answers
# each keystroke from it: every query word must prefix a token of the title (AND), postings
# holding more of the words as whole tokens first; a query equal to a posting id opens it.
# Everything is drawn with DOM calls and text nodes (titles are seller-written), and the chosen
# posting lives in the URL (#posting=<id>), so links and the back button work.
SCRIPT = r"""
(() => {
"use strict";
const D = JSON.parse(document.getElementById("browse-data").textContent);
const n = D.ids.length;
const $ = (id) => document.getElementById(id);
const RESULTS = 50;
const TITLE_CHARS = 110;
const REASONS = {"false positive": "Worst false positives", "false negative":
  "Worst false negatives", "sample": "Sampled postings", "lowest F1": "Lowest F1",
  "largest predicted group": "Largest predicted groups"};

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children);
  return node;
}
const href = (r) => "#posting=" + encodeURIComponent(D.ids[r]);
function idLink(r) {
  const a = el("a", "pid", D.ids[r]);
  a.href = href(r);
  return a;
}
const plural = (count, word, ending = "s") => `${count} ${word}${count === 1 ? "" : ending}`;
function summaryOf(r) {
  const parts = [`${D.pred[r].length + (D.hidden[r] || 0)} predicted`];
  if (D.f1) parts.push(`F1 ${D.f1[r].toFixed(3)}`);
  return " · " + parts.join(" · ");
}

// ---------------------------------------------------------------- search
const rowOf = new Map(D.ids.map((id, r) => [id, r]));
const TOKEN = /[\p{L}\p{N}]+/gu;
const tokensOf = (text) => text.toLowerCase().match(TOKEN) || [];
const rowsOf = new Map();
D.titles.forEach((title, r) => {
  for (const token of new Set(tokensOf(title))) {
    const rows = rowsOf.get(token);
    if (rows) rows.push(r); else rowsOf.set(token, [r]);
  }
});
const vocabulary = Array.from(rowsOf.keys()).sort();

function firstAtLeast(word) {
  let lo = 0, hi = vocabulary.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (vocabulary[mid] < word) lo = mid + 1; else hi = mid;
  }
  return lo;
}

function search(query) {
  const text = query.trim();
  const exact = rowOf.get(text);
  const words = tokensOf(text).slice(0, 200);
  const found = [];
  if (words.length) {
    const matched = new Uint8Array(n);  // words matched so far, each as a prefix of a token
    const whole = new Uint8Array(n);    // how many of them as a whole token
    words.forEach((word, k) => {
      for (let v = firstAtLeast(word); v < vocabulary.length; v++) {
        const token = vocabulary[v];
        if (!token.startsWith(word)) break;
        const same = token === word;  // sorts first among the tokens the word prefixes
        for (const r of rowsOf.get(token)) {
          if (matched[r] === k) {
            matched[r] = k + 1;
            if (same) whole[r]++;
          }
        }
      }
    });
    for (let r = 0; r < n; r++) if (matched[r] === words.length && r !== exact) found.push(r);
    found.sort((a, b) => whole[b] - whole[a] || a - b);
  }
  if (exact !== undefined) found.unshift(exact);
  return found;
}

let results = [];
function showResults(query) {
  $("results").replaceChildren(...results.slice(0, RESULTS).map((r) => el(
    "li", "", idLink(r), D.titles[r], el("span", "note", summaryOf(r)))));
  const count = results.length;
  $("count").textContent = !query.trim() ? "" : count === 0 ? "no posting matches"
    : `${count.toLocaleString("en-US")} ${count === 1 ? "posting matches" : "postings match"}`
      + (count > RESULTS ? `, the first ${RESULTS} shown` : "");
}

const box = $("search");
const browse = window.browse = {search, lastSearchMs: null};
box.addEventListener("input", () => {
  const start = performance.now();
  results = search(box.value);
  showResults(box.value);
  browse.lastSearchMs = performance.now() - start;
  $("timing").textContent = box.value.trim() ? `${browse.lastSearchMs.toFixed(1)} ms` : "";
  const exact = rowOf.get(box.value.trim());
  if (exact !== undefined) location.hash = href(exact);
});
box.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && results.length) location.hash = href(results[0]);
});

// ---------------------------------------------------------------- one posting
function contributionList(flat) {
  const list = el("ul", "contrib");
  for (let k = 0; k < flat.length; k += 3) {
    const c = flat[k + 1];
    const value = flat[k + 2] === null ? "NaN" : String(flat[k + 2]);
    list.append(el("li", "", `${D.features[flat[k]]} = ${value} `,
                   el("b", c >= 0 ? "up" : "down", (c >= 0 ? "+" : "") + c.toFixed(2))));
  }
  return list;
}

function tile(r, kind, mark, score, tip, contributions) {
  const parts = [];
  if (D.thumbs[r]) {
    const image = el("img");
    image.alt = "";
    image.src = D.thumbs[r];
    parts.push(image);
  }
  const caption = el("figcaption", "", el("span", "mark", mark));
  if (score !== undefined) {
    const number = el("span", score === null ? "score none" : "score",
                      score === null ? "not a candidate pair" : score.toFixed(3));
    number.title = tip;
    caption.append(number);
  }
  const title = D.titles[r];
  const short = el("p", "title", title.length <= TITLE_CHARS ? title
                   : title.slice(0, TITLE_CHARS - 1) + "…");
  short.title = title;
  caption.append(idLink(r), short);
  if (contributions) caption.append(contributionList(contributions));
  const figure = el("figure", "tile " + kind, ...parts, caption);
  figure.dataset.id = D.ids[r];
  return figure;
}

function tiles(id, figures) {
  const box = el("div", "tiles", ...figures);
  box.id = id;
  return box;
}

function modelTip(model) {
  return model === null ? "added by the graph merge: no model score (not a candidate pair)"
    : `post-processed score; the model's symmetrised score is ${model.toFixed(3)}`;
}

function show(r) {
  const view = $("posting");
  view.dataset.id = D.ids[r];
  const labelled = D.labels !== undefined;
  const same = (o) => D.labels[o] === D.labels[r];
  const explained = D.contrib[r] || {};
  const pred = D.pred[r];
  const scored = D.score !== undefined;
  const predicted = pred.map((o, k) => tile(
    o, !labelled ? "plain" : same(o) ? "ok" : "bad",
    !labelled ? `#${k + 1}` : same(o) ? "✓" : "✗ wrong",
    scored ? D.score[r][k] : undefined, scored ? modelTip(D.model[r][k]) : "", explained[o]));
  const facts = [plural(pred.length + (D.hidden[r] || 0), "predicted match", "es")];
  const columns = [el("section", "", el("h3", "", "Predicted group, best first"),
                      tiles("predicted", predicted))];
  const notes = [];
  if (D.hidden[r]) notes.push(`predicted but not on this sampled page: ${D.hidden[r]}`);
  if (labelled) {
    const truth = [];
    pred.forEach((o, k) => {
      if (same(o)) {
        truth.push(tile(o, "ok", "✓ found", scored ? D.score[r][k] : undefined,
                        scored ? modelTip(D.model[r][k]) : ""));
      }
    });
    const found = truth.length;
    D.missed[r].forEach((o, k) => truth.push(tile(
      o, "missed", "✗ missed", D.missedModel ? D.missedModel[r][k] : undefined,
      "the model's symmetrised score", explained[o])));
    const others = D.groupSize[D.labels[r]] - 1;
    facts.push(`true group: ${plural(others, "other posting")}`, `${found} found`,
               `${others - found} missed`, `F1 ${D.f1[r].toFixed(3)}`);
    if (truth.length < others) {
      notes.push(`true matches not on this sampled page: ${others - truth.length}`);
    }
    columns.push(el("section", "", el("h3", "", "True group"), tiles("truth", truth)));
  }
  const query = tile(r, "query", "query");
  view.replaceChildren(
    el("h2", "", "Posting ", D.ids[r]), el("div", "tiles", query),
    el("p", "facts", facts.join(" · ")), ...notes.map((text) => el("p", "note", text)),
    el("div", "columns", ...columns));
}

function showStart() {
  const view = $("posting");
  delete view.dataset.id;
  const parts = [el("h2", "", "Start here")];
  const reasons = [...new Set(D.featured.map(([, reason]) => reason))];
  for (const reason of reasons) {
    const rows = D.featured.filter(([, why]) => why === reason).map(([r]) => r);
    parts.push(el("h3", "", REASONS[reason] || reason), el("ul", "start", ...rows.map(
      (r) => el("li", "", idLink(r), D.titles[r], el("span", "note", summaryOf(r))))));
  }
  view.replaceChildren(...parts);
}

function route() {
  const chosen = /^#posting=(.*)$/.exec(location.hash);
  if (!chosen) return showStart();
  let id = chosen[1];
  try { id = decodeURIComponent(id); } catch (error) { /* shown as typed */ }
  const r = rowOf.get(id);
  if (r !== undefined) return show(r);
  $("posting").replaceChildren(el("p", "note", `No posting ${id} on this page.`));
}
window.addEventListener("hashchange", route);
route();
})();
"""
