"""The report page: one HTML file with its CSS inline, plots as inline SVG and thumbnails as data
URIs, so it can be mailed or attached to a ticket as it is. No script: nothing to break."""
from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path

import polars as pl

from common.text import display_titles

from .gallery import Card, Pair
from .run import Matches, Run

TITLE_CHARS = 110

CSS = """
:root { --ok: #2a9d8f; --bad: #e76f51; --miss: #e9c46a; --ink: #1d2b36; --mute: #6b7785;
        --line: #dde3e8; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--ink); background: #fff; }
header.top { padding: 20px 32px 12px; border-bottom: 1px solid var(--line); background: var(--bg); }
header.top h1 { margin: 0 0 4px; font-size: 22px; }
.headline { display: flex; gap: 28px; margin-top: 10px; flex-wrap: wrap; }
.headline div { font-size: 12px; color: var(--mute); }
.headline b { display: block; font-size: 22px; color: var(--ink); }
main { padding: 8px 32px 40px; max-width: 1500px; }
h2 { margin: 28px 0 10px; font-size: 18px; border-bottom: 2px solid var(--ink);
     padding-bottom: 4px; }
h3 { margin: 0 0 8px; font-size: 14px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 16px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 16px; }
.box { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; background: #fff; }
.box svg, .box img.plot { width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 3px 8px 3px 0; border-bottom: 1px solid var(--line);
         vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: var(--mute); font-size: 12px; }
code { font-size: 12px; }
nav.legend { display: flex; gap: 16px; flex-wrap: wrap; margin: 6px 0 14px; font-size: 13px; }
article.card { border: 1px solid var(--line); border-left: 5px solid var(--mute);
               border-radius: 6px; padding: 10px 12px; margin: 0 0 14px; }
article.card.fp { border-left-color: var(--bad); }
article.card.fn { border-left-color: var(--miss); }
article.card.sample { border-left-color: var(--ok); }
article.card > header { font-size: 13px; margin-bottom: 8px; }
.tag { display: inline-block; padding: 1px 7px; border-radius: 10px; color: #fff;
       font-size: 11px; font-weight: 600; background: var(--mute); margin-right: 6px; }
.tag.fp { background: var(--bad); } .tag.fn { background: #b58900; }
.tag.sample { background: var(--ok); }
.tiles { display: flex; flex-wrap: wrap; gap: 8px; }
figure.tile { margin: 0; width: 168px; border: 1px solid var(--line); border-radius: 5px;
              padding: 6px; font-size: 11.5px; background: #fff; }
figure.tile.query { background: #eef3f7; border-color: var(--ink); }
figure.tile.ok { border-top: 4px solid var(--ok); }
figure.tile.bad { border-top: 4px solid var(--bad); }
figure.tile.missed { border-top: 4px dashed var(--miss); }
figure.tile.trigger { box-shadow: 0 0 0 2px var(--ink); }
figure.tile img, figure.tile .noimg { display: block; width: 96px; height: 96px; margin: 0 auto 4px;
                                      object-fit: contain; }
figure.tile .noimg { background: var(--bg); color: var(--mute); font-size: 10px;
                     display: flex; align-items: center; justify-content: center; }
.mark { font-weight: 700; } .ok .mark { color: var(--ok); } .bad .mark { color: var(--bad); }
.missed .mark { color: #b58900; }
.score { float: right; font-weight: 600; font-variant-numeric: tabular-nums; }
.score.none { float: none; display: block; font-weight: 400; color: var(--mute); }
.pid { color: var(--mute); font-size: 10.5px; word-break: break-all; }
.title { margin: 2px 0 4px; overflow-wrap: anywhere; }
ul.contrib { list-style: none; margin: 0; padding: 0; font-size: 10.5px; color: var(--mute); }
ul.contrib b.up { color: var(--ok); } ul.contrib b.down { color: var(--bad); }
.more { align-self: center; color: var(--mute); font-size: 12px; padding: 0 8px; }
h4 { margin: 10px 0 6px; font-size: 12px; color: var(--mute); font-weight: 600; }
"""

REASON_CLASS = {"false positive": "fp", "false negative": "fn", "sample": "sample"}
REASON_TITLE = {"false positive": "Worst false positives",
                "false negative": "Worst false negatives", "sample": "Sampled postings"}


def render(run: Run, matches: Matches, by_size: list[dict], figures: dict[str, str],
           cards: list[Card], thumbs: dict[int, str], images: str | Path | None,
           browse: str | None = None) -> str:
    """The report page; ``browse`` is the address of the run's browse page, when there is one
    (relative to the report, so the two can travel together)."""
    overall = by_size[0]
    name = escape(run.work.root.resolve().name)
    link = f' · <a href="{escape(browse)}">browse every posting\'s matches</a>' if browse else ""
    headline = "".join(
        f"<div><b>{value}</b>{escape(label)}</div>" for label, value in (
            ("F1 (out of fold)", _num(overall["f1"])),
            ("precision", _num(overall["precision"])),
            ("recall", _num(overall["recall"])),
            ("threshold", _num(matches.threshold, 2)),
            ("postings", f"{run.n:,}"),
            ("candidate pairs", f"{len(run.i):,}"),
            ("candidate recall", _num(run.candidates.get("recall")))))
    body = [
        f'<header class="top"><h1>Run report: {name}</h1>'
        f'<div class="note">work directory <code>{escape(str(run.work.root))}</code> · '
        f'protocol P1 out-of-fold scores, post-processed with the saved threshold{link}</div>'
        f'<nav class="headline">{headline}</nav></header><main>',
        "<h2>Run summary</h2>",
        f'<div class="grid">{_data_box(run, images)}{_embedders_box(run)}'
        f'{_features_box(run)}{_model_box(run, matches)}</div>',
        "<h2>Scores by true group size</h2>",
        f'<div class="grid"><div class="box">{_size_table(by_size)}'
        f'<p class="note">Mean per-posting figures over the postings whose true group (self '
        f'included) has that size; metrics.json reports F1 {_num(run.metrics.get("f1"))}.</p>'
        f'</div>{_steps_box(run)}</div>',
        "<h2>Plots</h2>",
        '<div class="plots">' + "".join(
            f'<div class="box"><h3>{escape(title)}</h3>{svg}</div>'
            for title, svg in figures.items()) + _ablation_box(run) + "</div>",
        _gallery(run, matches, cards, thumbs, images),
        "</main>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Run report: {name}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


# ----------------------------------------------------------------------------- summary boxes

def _num(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _rows(pairs: list[tuple[str, object]]) -> str:
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>"
                               for k, v in pairs) + "</table>"


def _data_box(run: Run, images) -> str:
    with_image = (int(run.postings["image"].is_not_null().sum())
                  if "image" in run.postings.columns else 0)
    groups = int(run.postings["label_group"].n_unique())
    return '<div class="box"><h3>Data</h3>' + _rows([
        ("postings file", f"<code>{escape(str(run.candidates.get('postings', '?')))}</code>"),
        ("postings", f"{run.n:,}"),
        ("label groups", f"{groups:,} (mean size {run.n / max(groups, 1):.2f})"),
        ("with an image name", f"{with_image:,}"),
        ("images folder", f"<code>{escape(str(images))}</code>" if images else
         "none given: galleries show titles only"),
    ]) + "</div>"


def _embedders_box(run: Run) -> str:
    rows = []
    recall_by = run.candidates.get("recall_by_embedder", {})
    for spec in run.candidates.get("embedders", []):
        config = ", ".join(f"{k}={v}" for k, v in sorted(spec.get("config", {}).items())
                           if v is not None)
        recall = (f" · recall {recall_by[spec['name']]:.3f}" if spec["name"] in recall_by
                  else "")
        rows.append((spec["name"], f'<span class="note">{escape(config)}{recall}</span>'))
    rows += [("top-K", str(run.candidates.get("k", "?"))),
             ("candidate pairs", f"{run.candidates.get('pairs', len(run.i)):,} "
                                 f"({run.candidates.get('pairs_per_posting', 0):.1f} per posting)"),
             ("candidate recall", _num(run.candidates.get("recall")))]
    return '<div class="box"><h3>Embedders and candidates</h3>' + _rows(rows) + "</div>"


def _features_box(run: Run) -> str:
    counts: dict[str, int] = {}
    for group in run.features.get("groups", {}).values():
        counts[group] = counts.get(group, 0) + 1
    gains = {g: float(s) for g, s in run.importance.group_by("group").agg(
        pl.col("gain").sum()).iter_rows()}
    total = sum(gains.values()) or 1.0
    rows = [(g, f"{c} features · {100 * gains.get(g, 0) / total:.1f} % of gain")
            for g, c in sorted(counts.items())]
    rows.append(("total", f"{sum(counts.values())} features"))
    return '<div class="box"><h3>Features</h3>' + _rows(rows) + "</div>"


def _model_box(run: Run, matches: Matches) -> str:
    m = run.metrics
    return '<div class="box"><h3>Model and post-processing</h3>' + _rows([
        ("backend", escape(run.bundle.ranker.backend)),
        ("folds (P1)", str(m.get("folds", "?"))),
        ("trees (final model)", str(m.get("final_trees", "?"))),
        ("training pairs", f"{m.get('pairs', 0):,} ({m.get('positive_pairs', 0):,} true)"),
        ("negative rate", str(m.get("negative_rate", "?"))),
        ("weighted by group size", str(m.get("weight_by_group_size", False)).lower()),
        ("seed", str(m.get("seed", "?"))),
        ("threshold", f"{matches.threshold:.2f} on the {escape(matches.symmetrise)}-"
                      f"symmetrised score, at most {matches.max_matches} matches"),
    ]) + "</div>"


def _size_table(by_size: list[dict]) -> str:
    head = ("<tr><th>true group size</th><th class=num>postings</th><th class=num>F1</th>"
            "<th class=num>precision</th><th class=num>recall</th>"
            "<th class=num>mean predicted size</th></tr>")
    rows = "".join(
        f"<tr><td>{escape(r['size'])}</td><td class=num>{r['postings']:,}</td>"
        f"<td class=num>{_num(r['f1'])}</td><td class=num>{_num(r['precision'])}</td>"
        f"<td class=num>{_num(r['recall'])}</td>"
        f"<td class=num>{_num(r['mean_predicted_size'], 2)}</td></tr>" for r in by_size)
    return f"<table>{head}{rows}</table>"


def _steps_box(run: Run) -> str:
    steps = run.metrics.get("postprocess_steps") or []
    if not steps:
        return ""
    return ('<div class="box"><h3>Post-processing steps (metrics.json)</h3>'
            + _json_table(steps) + "</div>")


def _json_table(records: list[dict]) -> str:
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]

    def cell(value) -> str:
        if isinstance(value, float):
            return f"<td class=num>{value:.4f}</td>"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"<td class=num>{value:,}</td>"
        text = value if isinstance(value, str) else json.dumps(value)
        return f"<td>{escape(text)}</td>"

    return ("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>"
            + "".join("<tr>" + "".join(cell(r.get(c)) if c in r else "<td></td>"
                                       for c in columns) + "</tr>" for r in records)
            + "</table>")


def _ablation_box(run: Run) -> str:
    """The ablation chart written by ``ablate`` (its PNG, else a table of its JSON); absent runs
    say how to make one."""
    parts = []
    if run.ablation_png:
        data = base64.b64encode(run.ablation_png).decode()
        parts.append(f'<img class="plot" alt="ablation chart" src="data:image/png;base64,{data}">')
    if run.ablation is not None:
        records = run.ablation
        if isinstance(records, dict):
            records = next((v for v in records.values() if isinstance(v, list)), [records])
        if isinstance(records, list) and all(isinstance(r, dict) for r in records):
            parts.append(_json_table(records))
        else:
            parts.append(f"<pre>{escape(json.dumps(run.ablation, indent=1)[:5000])}</pre>")
    if not parts:
        parts.append('<p class="note">No ablation in this work directory; '
                     '<code>python cli.py ablate --work DIR</code> adds one.</p>')
    return '<div class="box"><h3>Feature-group ablation</h3>' + "".join(parts) + "</div>"


# ----------------------------------------------------------------------------- galleries

def _gallery(run: Run, matches: Matches, cards: list[Card], thumbs: dict[int, str],
             images) -> str:
    ids = run.postings["posting_id"].to_list()
    titles = display_titles(run.postings["title"]).to_list()  # escapes decoded
    labels = run.postings["label_group"].to_list()
    sections = ["<h2>Galleries</h2>",
                '<p class="note">Each card is one posting (the query, shaded) with its predicted '
                'group by descending score: <span class="mark" style="color:var(--ok)">✓</span>'
                ' same product, <span class="mark" style="color:var(--bad)">✗</span> not; then '
                'the '
                'true matches it missed. Scores are the post-processed out-of-fold scores; under '
                'each pair, its largest feature contributions to the model\'s log-odds '
                '(feature = value, contribution). The pair that put a card here is outlined.'
                + ("" if images else " No images folder was given, so titles only.") + "</p>"]
    counts = {reason: sum(c.reason == reason for c in cards) for reason in REASON_TITLE}
    sections.append('<nav class="legend">' + "".join(
        f'<a href="#{REASON_CLASS[r]}">{escape(REASON_TITLE[r])} ({n})</a>'
        for r, n in counts.items() if n) + "</nav>")
    for reason, title in REASON_TITLE.items():
        chosen = [c for c in cards if c.reason == reason]
        if not chosen:
            continue
        sections.append(f'<h2 id="{REASON_CLASS[reason]}">{escape(title)}</h2>')
        for card in chosen:
            sections.append(_card(card, ids, titles, labels, thumbs, matches,
                                  with_images=images is not None))
    return "\n".join(sections)


def _card(card: Card, ids, titles, labels, thumbs, matches: Matches, with_images: bool) -> str:
    q = card.query
    cls = REASON_CLASS[card.reason]
    head = (f'<header><span class="tag {cls}">{escape(card.reason)}</span>'
            f'<b>{escape(ids[q])}</b> · group {escape(str(labels[q]))} · '
            f'F1 {matches.f1[q]:.3f} · '
            f"predicted {int(matches.pred_size[q])}, true {int(matches.true_size[q])} (self "
            f"included) · missed {len(card.missed) + card.missed_hidden}</header>")
    tiles = [_tile(q, None, "query", False, ids, titles, thumbs, with_images)]
    tiles += [_tile(p.posting, p, "ok" if p.same else "bad", p.posting == card.trigger, ids,
                    titles, thumbs, with_images) for p in card.members]
    if card.members_hidden:
        tiles.append(f'<div class="more">+{card.members_hidden} more predicted</div>')
    parts = [f'<article class="card {cls}">', head, '<div class="tiles">', *tiles, "</div>"]
    if card.missed:
        parts += ["<h4>Missed true matches</h4>", '<div class="tiles">']
        parts += [_tile(p.posting, p, "missed", p.posting == card.trigger, ids, titles, thumbs,
                        with_images) for p in card.missed]
        if card.missed_hidden:
            parts.append(f'<div class="more">+{card.missed_hidden} more missed</div>')
        parts.append("</div>")
    parts.append("</article>")
    return "".join(parts)


def _tile(k: int, pair: Pair | None, kind: str, trigger: bool, ids, titles, thumbs,
          with_images: bool) -> str:
    title = titles[k] or ""
    short = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
    if k in thumbs:
        image = f'<img alt="" src="{thumbs[k]}">'
    else:  # a placeholder only where images were asked for, so that the gap is noticed
        image = '<div class="noimg">no image</div>' if with_images else ""
    if pair is None:
        caption = '<span class="mark">query</span>'
    else:
        mark = {"ok": "✓", "bad": "✗", "missed": "✗ missed"}[kind]
        score = ('<span class="score none">not a candidate pair</span>' if pair.score is None
                 else f'<span class="score" title="post-processed score; the model gave this '
                      f'direction p = {pair.p:.3f}">{pair.score:.3f}</span>')
        caption = f'<span class="mark">{mark}</span>{score}'
    contributions = ""
    if pair is not None and pair.contributions:
        contributions = '<ul class="contrib">' + "".join(
            f'<li>{escape(name)} = {value:.3g} <b class="{"up" if c >= 0 else "down"}">'
            f"{c:+.2f}</b></li>" for name, c, value in pair.contributions) + "</ul>"
    classes = f"tile {kind}" + (" trigger" if trigger else "")
    return (f'<figure class="{classes}">{image}<figcaption>{caption}'
            f'<div class="pid">{escape(ids[k])}</div>'
            f'<p class="title" title="{escape(title)}">{escape(short)}</p>{contributions}'
            f"</figcaption></figure>")
