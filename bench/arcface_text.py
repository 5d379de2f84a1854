"""ArcFace fine-tuning of MiniLM on 4 of the 5 P1 folds of Shopee train, scored on the fifth.

Held-out-fold text-only F1: cosine similarity of the titles' embeddings, a pair matches when it
exceeds a threshold, matching only within the held-out fold (its postings and label groups were
never seen in training). The threshold is the best one on a 0.01 grid, chosen the same way for
the pretrained and the fine-tuned model. Prints and writes a JSON report.

    HF_HUB_OFFLINE=1 python bench/arcface_text.py --report runs/bench_arcface_text.json
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.folds import group_folds  # noqa: E402
from common.metric import score_pairs  # noqa: E402
from common.text import clean_titles  # noqa: E402
from embedders.arcface import (ArcFaceSettings, TextEncoder, embed_items,  # noqa: E402
                               save_checkpoint, train_arcface)


def best_threshold_f1(vectors: np.ndarray, labels: np.ndarray, lowest: float = 0.4,
                      chunk: int = 2048) -> tuple[float, float]:
    """(F1, threshold) of the best cosine threshold on a 0.01 grid from ``lowest``."""
    queries, matches, sims = [], [], []
    for start in range(0, len(vectors), chunk):  # chunked: never the full n × n at once
        block = vectors[start:start + chunk] @ vectors.T
        rows, cols = np.nonzero(block >= lowest)
        keep = rows + start != cols
        queries.append(rows[keep] + start)
        matches.append(cols[keep])
        sims.append(block[rows[keep], cols[keep]])
    q, m, s = (np.concatenate(a) for a in (queries, matches, sims))
    best = (0.0, lowest)
    for threshold in np.round(np.arange(lowest, 1.0, 0.01), 2):
        keep = s >= threshold
        f1 = score_pairs(q[keep], m[keep], labels).f1
        best = max(best, (f1, float(threshold)))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postings", default=str(Path(os.environ.get(
        "SHOPEE_DATA", Path(__file__).resolve().parents[2] / "shared/data/shopee")) / "train.csv"))
    parser.add_argument("--heldout-fold", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-seq-length", type=int, default=32)
    parser.add_argument("--freeze-layers", type=int, default=4)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--head-lr", type=float, default=3e-3)
    parser.add_argument("--margin", type=float, default=0.5)
    parser.add_argument("--scale", type=float, default=30.0)
    parser.add_argument("--limit", type=int, help="use only the first N postings (smoke runs)")
    parser.add_argument("--report", default="runs/bench_arcface_text.json")
    parser.add_argument("--checkpoint", help="also save the fine-tuned model here")
    args = parser.parse_args()

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
    report = {"postings": args.postings, "train_postings": len(train_rows),
              "train_groups": int(train_labels.max() + 1), "heldout_postings": len(held_rows),
              "load_average_start": os.getloadavg()[0], "args": vars(args)}

    encoder = TextEncoder(max_seq_length=args.max_seq_length, freeze_layers=args.freeze_layers)
    start = time.perf_counter()
    states = encoder.precompute_frozen(titles)
    report["seconds_frozen_layers"] = round(time.perf_counter() - start, 1)
    before = embed_items(encoder, states[held_rows])
    report["f1_pretrained"], report["threshold_pretrained"] = best_threshold_f1(before, held_labels)
    print(f"pretrained MiniLM: held-out F1 {report['f1_pretrained']:.4f}", file=sys.stderr)

    settings = ArcFaceSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                               head_lr=args.head_lr, margin=args.margin, scale=args.scale)
    result = train_arcface(encoder, states[train_rows], train_labels, settings)
    after = embed_items(encoder, states[held_rows])
    report["f1_arcface"], report["threshold_arcface"] = best_threshold_f1(after, held_labels)
    report.update({
        "f1_lift": round(report["f1_arcface"] - report["f1_pretrained"], 4),
        "seconds_training": round(result.seconds, 1),
        "seconds_training_with_frozen_pass": round(result.seconds
                                                   + report["seconds_frozen_layers"], 1),
        "samples_per_second": round(result.samples_per_second, 2), "device": result.device,
        "amp": result.amp, "loss_first": round(float(np.mean(result.losses[:20])), 4),
        "loss_last": round(float(np.mean(result.losses[-20:])), 4),
        "load_average_end": os.getloadavg()[0]})
    if args.checkpoint:
        save_checkpoint(Path(args.checkpoint), encoder, result, settings)
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"arcface_text: held-out F1 {report['f1_pretrained']:.4f} → {report['f1_arcface']:.4f} "
          f"({report['f1_lift']:+.4f}), training {report['seconds_training'] / 60:.1f} min "
          f"(+{report['seconds_frozen_layers'] / 60:.1f} min frozen-layer pass) on "
          f"{result.device}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
