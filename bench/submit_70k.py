"""Time `submit` on a catalog the size of Kaggle's hidden test (about 70,000 postings).

The catalog is built here, never committed: the Shopee train rows, then reworded copies of them
until it holds ``--size`` postings (70,000 by default; ``datasets.reworded_catalog``): each copy
has new posting ids, reworded titles (a dropped word, two swapped words, an appended filler word)
and perceptual hashes with up to three flipped bits. `submit` runs twice as a user would run it,
in a fresh process each time:

1. from the raw CSV (an empty --work folder: every embedding is computed);
2. again with the same --work folder (embeddings cached).

Each run's stage seconds (from the `submit.json` that `submit --work` writes) and peak resident
memory (GNU time) are printed as a table and written to ``--out`` as JSON.

    python bench/submit_70k.py --model runs/shopee/model [--train ../shared/data/shopee/train.csv]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets import reworded_catalog  # noqa: E402


def run_submit(catalog: Path, model: str, work: Path, out: Path,
               extra: list[str] | None = None, timeout: float | None = None) -> dict:
    """One `submit` in a fresh process under GNU time: wall, CPU, peak RSS, stage seconds. Past
    ``timeout`` seconds the process group is killed and the result says so, with the last lines
    the command logged (where it was)."""
    command = ["/usr/bin/time", "-v", sys.executable, str(ROOT / "cli.py"), "submit",
               "--postings", str(catalog), "--model", model, "--work", str(work), "--out", str(out),
               *(extra or [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    # A session of its own, so that a timeout kills the Python process under GNU time too.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=ROOT, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        return {"not_finished": f"killed after {timeout:.0f} s",
                "wall_seconds": round(time.perf_counter() - start, 1),
                "log_tail": [line for line in stderr.splitlines() if line.strip()][-8:]}
    wall = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"submit failed:\n{stderr}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", stderr).group(1))
              for kind in ("User", "System"))
    report = json.loads((work / "submit.json").read_text())
    submission = hashlib.sha256(out.read_bytes()).hexdigest()
    # CPU seconds next to wall seconds: on a shared machine the wall clock also counts waiting.
    return {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "peak_rss_gib": round(peak_kb / 2**20, 2),
            "stage_seconds": report["seconds"], "candidate_pairs": report.get("candidate_pairs"),
            "pairs": report["pairs"], "submission_sha256": submission}


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
        catalog = reworded_catalog(train, args.size, args.seed).drop("label_group")
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
