"""Benchmark: building every feature group for a finished `candidates` run.

    python bench/features_shopee.py --work runs/bench-p1 [--repeat 3]

Loads the work directory's postings, embeddings (from the cache), neighbours and candidate pairs,
builds all feature groups `--repeat` times and prints one JSON line: pairs, features, the median
seconds in total and per group, and the process's peak RSS. Run on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features import build_features  # noqa: E402
from pipeline import Candidates  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    candidates = Candidates.load(args.work)
    table = candidates.table
    totals, groups = [], {}
    for _ in range(args.repeat):
        ctx = candidates.context()  # a fresh context: nothing cached from the previous run
        start = time.perf_counter()
        built = build_features(ctx)
        totals.append(time.perf_counter() - start)
        for group, seconds in built.seconds.items():
            groups.setdefault(group, []).append(seconds)
        features = len(built.names)
        del built, ctx
    print(json.dumps({
        "pairs": table.height, "features": features,
        "seconds_median": round(statistics.median(totals), 2),
        "seconds_runs": [round(t, 2) for t in totals],
        "group_seconds_median": {g: round(statistics.median(s), 2) for g, s in groups.items()},
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))


if __name__ == "__main__":
    main()
