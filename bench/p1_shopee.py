"""Benchmark: the whole protocol-P1 run on Shopee train, stage by stage.

    python bench/p1_shopee.py [--data ../shared/data/shopee] [--work runs/bench-p1]
                              [--embedders tfidf,tfidf_char,phash] [--backend lightgbm]

Runs `candidates`, then `train-ranker`, each in its own process under /usr/bin/time, and prints one
JSON line: wall seconds and peak RSS per command, the seconds each stage reported (features,
cross-validation, final model …), candidate recall and out-of-fold F1 / precision / recall.
Run it on an otherwise idle machine: the figures are what the README quotes.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, str(ROOT / "cli.py"), *args],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {"wall_seconds": round(time.perf_counter() - start, 1),
            "peak_rss_gib": round(peak_kb / 2**20, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "shopee"))
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench-p1"))
    parser.add_argument("--embedders", default="tfidf,tfidf_char,phash")
    parser.add_argument("--backend", default="lightgbm")
    args = parser.parse_args()
    result = {"candidates": timed(["candidates", "--postings", f"{args.data}/train.csv",
                                   "--work", args.work, "--embedders", args.embedders]),
              "train_ranker": timed(["train-ranker", "--work", args.work,
                                     "--backend", args.backend])}
    report = json.loads((Path(args.work) / "candidates.json").read_text())
    metrics = json.loads((Path(args.work) / "metrics.json").read_text())
    result.update({
        "pairs": report["pairs"], "candidate_recall": report["recall"],
        "candidate_seconds": report["seconds"],
        "train_seconds": {k: v for k, v in metrics["seconds"].items()
                          if not k.endswith("fold_seconds")},
        "f1": metrics["f1"], "precision": metrics["precision"], "recall": metrics["recall"],
        "threshold_only": metrics["postprocess_steps"][0], "threshold": metrics["threshold"],
        "first_stage": metrics["first_stage"],
        "total_wall_seconds": round(result["candidates"]["wall_seconds"]
                                    + result["train_ranker"]["wall_seconds"], 1)})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
