"""Time `submit` on a catalog the size of Kaggle's hidden test (about 70,000 postings).

The catalog is built here, never committed: the Shopee train rows, then reworded copies of them
until it holds ``--size`` postings (70,000 by default): each copy has new posting ids, reworded
titles (a dropped word, two swapped words, an appended filler word) and perceptual hashes with up
to three flipped bits. `submit` runs twice as a user would run it, in a fresh process each time:

1. from the raw CSV (an empty --work folder: every embedding is computed);
2. again with the same --work folder (embeddings cached).

Each run's stage seconds (from the `submit.json` that `submit --work` writes) and peak resident
memory (GNU time) are printed as a table and written to ``--out`` as JSON.

    python bench/submit_70k.py --model runs/shopee/model [--train ../shared/data/shopee/train.csv]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
FILLERS = ["original", "murah", "promo", "ready", "termurah", "new", "best", "seller"]


def perturbed_copy(train: pl.DataFrame, seed: int, suffix: str) -> pl.DataFrame:
    """A reworded copy of ``train`` with fresh ids and slightly changed hashes (seeded)."""
    rng = np.random.default_rng(seed)
    titles = []
    for title in train["title"].to_list():
        words = title.split()
        if len(words) > 3:
            del words[rng.integers(len(words))]
        if len(words) > 2:
            a, b = rng.choice(len(words), 2, replace=False)
            words[a], words[b] = words[b], words[a]
        words.append(FILLERS[rng.integers(len(FILLERS))])
        titles.append(" ".join(words))
    hashes = np.array([int(h, 16) for h in train["image_phash"].to_list()], dtype=np.uint64)
    for _ in range(3):
        flip = rng.random(len(hashes)) < 0.6
        bits = rng.integers(0, 64, len(hashes)).astype(np.uint64)
        hashes[flip] ^= np.left_shift(np.uint64(1), bits[flip])
    return train.with_columns(
        (pl.col("posting_id") + suffix).alias("posting_id"),
        pl.Series("title", titles),
        pl.Series("image_phash", [f"{h:016x}" for h in hashes.tolist()]),
        (pl.col("label_group") + suffix).alias("label_group"))


def run_submit(catalog: Path, model: str, work: Path, out: Path) -> dict:
    command = ["/usr/bin/time", "-v", sys.executable, str(ROOT / "cli.py"), "submit",
               "--postings", str(catalog), "--model", model, "--work", str(work), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"submit failed:\n{done.stderr}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", done.stderr).group(1))
              for kind in ("User", "System"))
    report = json.loads((work / "submit.json").read_text())
    # CPU seconds next to wall seconds: on a shared machine the wall clock also counts waiting.
    return {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "peak_rss_gib": round(peak_kb / 2**20, 2),
            "stage_seconds": report["seconds"], "candidate_pairs": report.get("candidate_pairs"),
            "pairs": report["pairs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder written by train-ranker")
    parser.add_argument("--train", default=str(ROOT.parent / "shared" / "data" / "shopee" /
                                               "train.csv"))
    parser.add_argument("--out", default="bench_submit_70k.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=70_000, help="postings in the catalog")
    args = parser.parse_args()

    train = pl.read_csv(args.train, infer_schema=False)
    scratch = Path(tempfile.mkdtemp(prefix="bench-70k-"))
    try:
        parts, rows = [train], train.height
        while rows < args.size:
            parts.append(perturbed_copy(train, args.seed + len(parts), f"_copy{len(parts)}"))
            rows += train.height
        catalog = pl.concat(parts).head(args.size).drop("label_group")
        catalog_path = scratch / "catalog.csv"
        catalog.write_csv(catalog_path)
        print(f"catalog: {catalog.height:,} postings → {catalog_path}", file=sys.stderr)
        results = {"postings": catalog.height,
                   "load_average_before": os.getloadavg()[0]}
        for name in ("raw_csv", "cached_embeddings"):
            results[name] = run_submit(catalog_path, args.model, scratch / "work",
                                       scratch / f"{name}.csv")
            print(f"{name}: {results[name]['wall_seconds']} s wall, "
                  f"{results[name]['cpu_seconds']} CPU s, peak RSS "
                  f"{results[name]['peak_rss_gib']} GiB, stages {results[name]['stage_seconds']}",
                  file=sys.stderr)
        results["load_average_after"] = os.getloadavg()[0]
        results["cpu_count"] = os.cpu_count()
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        stages = sorted({s for r in ("raw_csv", "cached_embeddings")
                         for s in results[r]["stage_seconds"]})
        print("| stage | raw CSV (s) | cached embeddings (s) |\n| --- | --- | --- |")
        for stage in stages:
            print(f"| {stage} | " + " | ".join(
                str(results[r]["stage_seconds"].get(stage, "–"))
                for r in ("raw_csv", "cached_embeddings")) + " |")
        print(f"| wall (process) | {results['raw_csv']['wall_seconds']} | "
              f"{results['cached_embeddings']['wall_seconds']} |")
        print(f"| CPU, user + system (s) | {results['raw_csv']['cpu_seconds']} | "
              f"{results['cached_embeddings']['cpu_seconds']} |")
        print(f"| peak RSS (GiB) | {results['raw_csv']['peak_rss_gib']} | "
              f"{results['cached_embeddings']['peak_rss_gib']} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
