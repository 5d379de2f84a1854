"""Cost of `submit` against catalog size: 100,000, 300,000 and 1,000,000 postings.

Each catalog is Shopee train grown by reworded copies (``datasets.reworded_catalog``: new ids,
reworded titles, perturbed phashes, as the 70,000-posting benchmark builds it), written to a
scratch CSV and never committed. `submit` runs once per catalog from the raw CSV (an empty
--work folder: every embedding is computed) in a fresh process, as a user would run it; its
stage seconds (from `submit.json`), wall and CPU seconds and peak resident memory (GNU time) are
printed as a table, written to ``--out`` as JSON and drawn against n in ``--plot``.

    python bench/scale.py --model runs/shopee/model [--sizes 100000,300000,1000000]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets import reworded_catalog  # noqa: E402
from submit_70k import run_submit  # noqa: E402  (bench/ is the script's folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", default=str(ROOT.parent / "shared/data/shopee/train.csv"))
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra", default="", help="more submit options, e.g. '--chunk-size 0'")
    parser.add_argument("--limit-seconds", type=float,
                        help="kill a submit that runs longer and record where it was")
    parser.add_argument("--out", default="bench/scale.json")
    parser.add_argument("--plot", default="docs/scale.png")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    train = pl.read_csv(args.train, infer_schema=False)
    rows = []
    for size in sizes:
        scratch = Path(tempfile.mkdtemp(prefix=f"bench-scale-{size}-"))
        try:
            start = time.perf_counter()
            catalog = reworded_catalog(train, size, args.seed).drop("label_group")
            catalog.write_csv(scratch / "catalog.csv")
            print(f"catalog: {catalog.height:,} postings ({time.perf_counter() - start:.0f} s "
                  f"to generate)", file=sys.stderr)
            del catalog
            row = {"postings": size, **run_submit(scratch / "catalog.csv", args.model,
                                                   scratch / "work", scratch / "submission.csv",
                                                   args.extra.split(), args.limit_seconds)}
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if "not_finished" not in row:
            row["ms_per_posting"] = round(1000 * row["wall_seconds"] / size, 3)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
        _write(args, rows)
    _table(rows)


def _write(args, rows: list[dict]) -> None:
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "extra": args.extra,
                                          "rows": rows}, indent=2) + "\n")
    _plot([row for row in rows if "stage_seconds" in row], Path(args.plot))


def _plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    n = [row["postings"] for row in rows]
    figure = Figure(figsize=(10, 4))
    seconds, memory = figure.subplots(1, 2)
    stages = sorted({stage for row in rows for stage in row["stage_seconds"]
                     if stage != "total"})
    bottom = [0.0] * len(rows)
    for stage in stages:
        values = [row["stage_seconds"].get(stage, 0.0) for row in rows]
        seconds.bar([str(x) for x in n], values, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, values)]
    seconds.plot([str(x) for x in n], [row["wall_seconds"] for row in rows], "k.-",
                 label="wall, whole process")
    seconds.set_xlabel("postings")
    seconds.set_ylabel("seconds")
    seconds.legend(fontsize=7)
    seconds.set_title("submit: seconds per stage")
    memory.plot(n, [row["peak_rss_gib"] for row in rows], "o-")
    memory.set_xscale("log")
    memory.set_xlabel("postings")
    memory.set_ylabel("peak RSS (GiB)")
    memory.set_title("submit: peak memory")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def _table(rows: list[dict]) -> None:
    rows = [row for row in rows if "stage_seconds" in row]
    stages = sorted({stage for row in rows for stage in row["stage_seconds"]})
    print("| stage | " + " | ".join(f"{row['postings']:,}" for row in rows) + " |")
    print("| --- | " + " | ".join("---:" for _ in rows) + " |")
    for stage in stages:
        print(f"| {stage} | " + " | ".join(str(row["stage_seconds"].get(stage, ""))
                                          for row in rows) + " |")
    for key in ("candidate_pairs", "pairs", "wall_seconds", "cpu_seconds", "ms_per_posting",
                "peak_rss_gib"):
        print(f"| {key} | " + " | ".join(str(row.get(key)) for row in rows) + " |")


if __name__ == "__main__":
    main()
