"""Postings without a photo on Shopee: a model trained on half of Shopee train's products
(split by label_group, seed 0), with and without hiding the photo features of 10 % of its
training pairs (``view_dropout``), applied to the other half as it is and with the photo hash
of a seeded 20 % of its postings removed (as for missing or unreadable image files).

    python bench/missing_photos.py --out bench/missing_photos.json [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.metric import score_pairs  # noqa: E402
from common.postings import label_codes, load_postings  # noqa: E402
from pipeline import Matcher  # noqa: E402

SHARES = (0.0, 0.1)
MISSING = 0.2


def halves(postings: pl.DataFrame, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    groups = postings["label_group"].unique().sort().to_numpy()
    np.random.default_rng(seed).shuffle(groups)
    first = pl.col("label_group").is_in(list(groups[: len(groups) // 2]))
    return postings.filter(first), postings.filter(~first)


def without_photos(postings: pl.DataFrame, share: float, seed: int = 1) -> pl.DataFrame:
    drop = pl.Series(np.random.default_rng(seed).random(postings.height) < share)
    return postings.with_columns(pl.when(drop).then(None).otherwise(pl.col("image_phash"))
                                 .alias("image_phash"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    train, held = halves(load_postings(Path(args.data) / "shopee" / "train.csv"))
    catalogs = {"all photos": held, f"{MISSING:.0%} without a photo": without_photos(held, MISSING)}
    labels = label_codes(held)
    report = {"train_postings": train.height, "held_out_postings": held.height, "runs": {}}
    for share in SHARES:
        with tempfile.TemporaryDirectory(prefix="missing-photos-") as work:
            start = time.perf_counter()
            matcher = Matcher(view_dropout=share, cache_dir=work).fit(train)
            run = {"out_of_fold_f1": matcher.cv_report_["f1"],
                   "seconds_fit": round(time.perf_counter() - start, 1)}
            for name, catalog in catalogs.items():
                pairs = matcher.predict_pairs(catalog).filter(pl.col("kept"))
                run[name] = score_pairs(pairs["i"].to_numpy(), pairs["j"].to_numpy(),
                                        labels).as_dict(4)
        report["runs"][f"view_dropout {share}"] = run
        print(share, {k: v["f1"] if isinstance(v, dict) else v for k, v in run.items()},
              flush=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
