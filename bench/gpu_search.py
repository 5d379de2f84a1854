"""Exact dense top-K search (``candidates.search.top_k``: blocked products, torch's ``topk`` on
CUDA) on a GPU, at 100,000 and 1,000,000 rows.

The rows are seeded clustered unit vectors of 128 dimensions (the shape of ``tfidf_char``'s LSA
vectors; about 3 rows per cluster, as Shopee's groups). Exact search costs the same whatever the
vectors hold. For each size: seconds for every row's top-50, and the share of the top-50 that a
numpy brute force finds for 500 seeded rows; at 100,000 also the same search on the machine's
CPU cores, for comparison. Needs CUDA; writes JSON.

    python bench/gpu_search.py --out bench/gpu_search.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from candidates.search import top_k  # noqa: E402

K = 50


def clustered_rows(n: int, dims: int = 128, per_cluster: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // per_cluster + 1, dims)).astype(np.float32)
    rows = centres[rng.integers(0, len(centres), n)] \
        + 0.6 * rng.normal(size=(n, dims)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def agreement(rows: np.ndarray, found: np.ndarray, samples: int = 500) -> float:
    queries = np.random.default_rng(1).choice(len(rows), samples, replace=False)
    block = rows[queries] @ rows.T
    block[np.arange(samples), queries] = -np.inf
    truth = np.argpartition(-block, K, axis=1)[:, :K]
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found[queries], truth)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--out", default="bench/gpu_search.json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("no CUDA device")
    report = {"gpu": torch.cuda.get_device_name(0), "cpu_cores": os.cpu_count(), "k": K}
    for n in map(int, args.sizes.split(",")):
        rows = clustered_rows(n)
        torch.cuda.synchronize()
        start = time.perf_counter()
        found, _ = top_k(rows, K, device="cuda")
        torch.cuda.synchronize()
        entry = {"seconds_cuda": round(time.perf_counter() - start, 2),
                 "agreement_with_numpy": round(agreement(rows, found), 4)}
        if n <= 100_000:
            start = time.perf_counter()
            top_k(rows, K, device="cpu")
            entry["seconds_cpu"] = round(time.perf_counter() - start, 2)
        report[str(n)] = entry
        print(n, entry, flush=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
