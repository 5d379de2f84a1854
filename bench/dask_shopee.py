"""Benchmark: Shopee train in one process against a Dask ``LocalCluster`` (issue 14's cluster
acceptance lines).

    python bench/dask_shopee.py [--data ../shared/data/shopee] [--work runs/bench-dask]
                                [--workers 2] [--out bench/dask_shopee.json]

For each of one process and ``--scheduler local:N``, in fresh processes under /usr/bin/time:
`candidates` on train.csv, `train-ranker` (protocol P1, the default model), then `submit` of
train.csv with the single-process model. Prints and writes as JSON: wall seconds and peak RSS of
each command (the client's process: the workers are other processes), the candidate tables'
fingerprints, out-of-fold F1 / precision / recall, and the submissions' sha256.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from p1_shopee import timed  # noqa: E402


def run(data: str, work: Path, model: Path | None, scheduler: list[str]) -> dict:
    result = {"candidates": timed(["candidates", "--postings", f"{data}/train.csv",
                                   "--work", str(work), *scheduler]),
              "train_ranker": timed(["train-ranker", "--work", str(work), *scheduler])}
    out = work / "submission.csv"
    result["submit"] = timed(["submit", "--postings", f"{data}/train.csv", "--model",
                              str(model or work / "model"), "--out", str(out), *scheduler])
    candidates = json.loads((work / "candidates.json").read_text())
    metrics = json.loads((work / "metrics.json").read_text())
    result.update({
        "candidates_fingerprint": candidates["candidates_fingerprint"],
        "pairs": candidates["pairs"], "candidate_recall": candidates["recall"],
        "f1": metrics["f1"], "precision": metrics["precision"], "recall": metrics["recall"],
        "train_seconds": {k: v for k, v in metrics["seconds"].items()
                          if not k.endswith("fold_seconds")},
        "submission_sha256": hashlib.sha256(out.read_bytes()).hexdigest()})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "shopee"))
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench-dask"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "dask_shopee.json"))
    args = parser.parse_args()
    work = Path(args.work)
    single = run(args.data, work / "single", None, [])
    cluster = run(args.data, work / "cluster", work / "single" / "model",
                  ["--scheduler", f"local:{args.workers}"])
    result = {"workers": args.workers, "single_process": single, "local_cluster": cluster,
              "same_candidates": single["candidates_fingerprint"]
              == cluster["candidates_fingerprint"],
              "f1_difference": round(cluster["f1"] - single["f1"], 4),
              "same_submission": single["submission_sha256"] == cluster["submission_sha256"]}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
