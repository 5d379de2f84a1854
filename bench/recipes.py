"""Embedder training recipes side by side: MiniLM on Shopee titles, protocol P2 fold 0.

For the pretrained model and each recipe (``embedders.arcface.RECIPES``): a fresh MiniLM is
trained on 4 of the 5 P1 folds and embeds the fifth; the held-out-fold text-only F1 is the best
cosine threshold on a 0.01 grid, matching only within the held-out fold (its postings and label
groups were never seen in training), the same for every row. The frozen lower layers run once
for all recipes. The JSON report is rewritten after every recipe, so an interrupted run keeps
what it finished (``--resume`` skips them); ``--plot`` draws the F1 bars.

    HF_HUB_OFFLINE=1 python bench/recipes.py [--recipes arcface,triplet] [--device cuda]
                                             [--out bench/recipes.json] [--plot docs/recipes.png]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.atomic import write_json  # noqa: E402
from common.folds import group_folds  # noqa: E402
from common.metric import score_pairs  # noqa: E402
from common.text import clean_titles  # noqa: E402
from embedders.arcface import RECIPES, TextEncoder, embed_items, recipe_settings  # noqa: E402
from embedders.arcface import train_encoder  # noqa: E402
from embedders.arcface.train import resolve_device  # noqa: E402


def best_threshold(vectors: np.ndarray, labels: np.ndarray, lowest: float = 0.3,
                   chunk: int = 2048) -> dict:
    """F1, precision, recall and threshold of the best cosine threshold on a 0.01 grid."""
    queries, matches, sims = [], [], []
    for start in range(0, len(vectors), chunk):  # chunked: never the full n × n at once
        block = vectors[start:start + chunk] @ vectors.T
        rows, cols = np.nonzero(block >= lowest)
        keep = rows + start != cols
        queries.append(rows[keep] + start)
        matches.append(cols[keep])
        sims.append(block[rows[keep], cols[keep]])
    q, m, s = (np.concatenate(a) for a in (queries, matches, sims))
    best = None
    for threshold in np.round(np.arange(lowest, 1.0, 0.01), 2):
        keep = s >= threshold
        score = score_pairs(q[keep], m[keep], labels)
        if best is None or score.f1 > best["f1"]:
            best = {**score.as_dict(4), "threshold": float(threshold)}
    return best


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("pretrained", report["pretrained"]["f1"])] + \
        [(name, r["f1"]) for name, r in report["recipes"].items()]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    names, f1 = zip(*rows)
    colours = ["#999999"] + ["#1f77b4" if name != "arcface" else "#d62728" for name in names[1:]]
    ax.barh(names, f1, color=colours)
    for y, value in enumerate(f1):
        ax.text(value + 0.002, y, f"{value:.4f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(min(f1) - 0.03, max(f1) + 0.03)
    ax.set_xlabel("held-out fold F1 (titles only, best cosine threshold)")
    ax.set_title(f"MiniLM training recipes, Shopee P2 fold {report['heldout_fold']} "
                 f"({report['device']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postings", default=str(Path(os.environ.get(
        "SHOPEE_DATA", ROOT.parent / "shared/data/shopee")) / "train.csv"))
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--heldout-fold", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-seq-length", type=int, default=32)
    parser.add_argument("--freeze-layers", type=int, default=4)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--head-lr", type=float, default=3e-3)
    parser.add_argument("--device", default="auto", help="auto (CUDA where present), cpu, cuda")
    parser.add_argument("--model-path", help="sentence-transformers folder (default: MiniLM)")
    parser.add_argument("--limit", type=int, help="use only the first N postings (smoke runs)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "recipes.json"))
    parser.add_argument("--plot", help="also draw the F1 bars here (PNG)")
    parser.add_argument("--variants", help="JSON file {row name: {\"recipe\": NAME, option: "
                                           "value, ...}}: run these rows instead of --recipes")
    parser.add_argument("--resume", action="store_true",
                        help="keep the recipes --out already holds and run the others")
    args = parser.parse_args()
    rows = json.loads(Path(args.variants).read_text()) if args.variants else \
        {name: {"recipe": name} for name in args.recipes.split(",")}
    unknown = [r["recipe"] for r in rows.values() if r["recipe"] not in RECIPES]
    if unknown:
        parser.error(f"unknown recipes {unknown}; known: {', '.join(RECIPES)}")

    postings = pl.read_csv(args.postings, infer_schema=False)
    if args.limit:
        postings = postings.head(args.limit)
    titles = clean_titles(postings["title"])
    _, labels = np.unique(postings["label_group"].to_numpy(), return_inverse=True)
    fold = group_folds(labels, args.folds, seed=42)
    train_rows = np.flatnonzero(fold != args.heldout_fold)
    held_rows = np.flatnonzero(fold == args.heldout_fold)
    _, train_labels = np.unique(labels[train_rows], return_inverse=True)
    _, held_labels = np.unique(labels[held_rows], return_inverse=True)
    out = Path(args.out)
    previous = json.loads(out.read_text()) if args.resume and out.is_file() else {}

    def make_encoder():
        return TextEncoder(args.model_path, args.max_seq_length, args.freeze_layers)

    encoder = make_encoder().to(resolve_device(args.device))
    start = time.perf_counter()
    states = encoder.precompute_frozen(titles)
    frozen_seconds = round(time.perf_counter() - start, 1)
    report = {"postings": args.postings, "train_postings": len(train_rows),
              "train_groups": int(train_labels.max() + 1), "heldout_postings": len(held_rows),
              "heldout_fold": args.heldout_fold, "args": vars(args),
              "seconds_frozen_layers": frozen_seconds,
              "pretrained": best_threshold(embed_items(encoder, states[held_rows]), held_labels),
              "recipes": previous.get("recipes", {}), "device": None}
    print(f"pretrained MiniLM: held-out F1 {report['pretrained']['f1']:.4f}", file=sys.stderr)
    for name, row in rows.items():
        if name in report["recipes"]:
            continue
        overrides = {k: v for k, v in row.items() if k != "recipe"}
        settings = recipe_settings(row["recipe"], **{
            "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "head_lr": args.head_lr, "device": args.device, **overrides})
        load_before = os.getloadavg()[0]
        encoder = make_encoder()
        result = train_encoder(encoder, states[train_rows], train_labels, settings)
        score = best_threshold(embed_items(encoder, states[held_rows]), held_labels)
        report["device"] = result.device
        report["recipes"][name] = {
            **score, "lift": round(score["f1"] - report["pretrained"]["f1"], 4),
            "seconds_training": round(result.seconds, 1),
            "titles_per_second": round(result.samples_per_second, 1),
            "device": result.device, "amp": result.amp, "recipe": row["recipe"],
            "settings": {**RECIPES[row["recipe"]], **overrides},
            "loss_first": round(float(np.mean(result.losses[:20])), 4),
            "loss_last": round(float(np.mean(result.losses[-20:])), 4),
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
        write_json(out, report)  # after every recipe: an interrupted run keeps what it did
        print(f"{name}: held-out F1 {score['f1']:.4f} (threshold {score['threshold']:.2f}), "
              f"{result.seconds / 60:.1f} min, {result.samples_per_second:.0f} titles/s on "
              f"{result.device}", file=sys.stderr)
    write_json(out, report)
    if args.plot:
        plot(report, Path(args.plot))
    rows = sorted(report["recipes"].items(), key=lambda kv: -kv[1]["f1"])
    print(f"| recipe | F1 | precision | recall | threshold | training (s) | titles/s |\n"
          f"| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
          f"| pretrained | {report['pretrained']['f1']:.4f} | "
          f"{report['pretrained']['precision']:.4f} | {report['pretrained']['recall']:.4f} | "
          f"{report['pretrained']['threshold']:.2f} | – | – |")
    for name, r in rows:
        print(f"| {name} | {r['f1']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} | "
              f"{r['threshold']:.2f} | {r['seconds_training']:.0f} | "
              f"{r['titles_per_second']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
