"""A model applied to catalogs it was not trained on, with no labels from them: per-posting F1
against each catalog's true groups of what `submit` does (``adapt="auto"``: the conservative
post-processing where it finds the catalog unlike the training one, see
``pipeline.transfer``), of the saved post-processing, of matching nothing at all, and of
label-free cuts (every pair above a cut, or only mutual best pairs above it); and what `submit`
detected (score shift, coverage).

    python bench/transfer.py --model W/model --out bench/transfer.json [--data ../shared/data]

``W`` is a `train-ranker` work directory (e.g. of Shopee train with the default settings).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.metric import score_pairs  # noqa: E402
from common.pairs import symmetrise  # noqa: E402
from common.postings import label_codes, load_postings  # noqa: E402
from pipeline import Matcher  # noqa: E402
from postprocess import PostProcessor  # noqa: E402

CATALOGS = {"amazon_google": "amazon_google/postings.csv", "abt_buy": "abt_buy/postings.csv"}
CUTS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def figures(i: np.ndarray, j: np.ndarray, labels: np.ndarray) -> dict:
    return score_pairs(i, j, labels).as_dict(4)


def transfer(matcher: Matcher, path: Path) -> dict:
    postings = load_postings(path)
    labels, n = label_codes(postings), postings.height
    matching = matcher.match(postings)
    pairs = matching.pairs
    submitted = pairs.filter(pl.col("kept"))
    i, j = pairs["i"].to_numpy().astype(np.int64), pairs["j"].to_numpy().astype(np.int64)
    saved_i, saved_j, _ = matcher.bundle_.processor.predict(i, j, pairs["p"].to_numpy(), n)
    p = symmetrise(i, j, pairs["p"].to_numpy(), n)
    empty = np.zeros(0, dtype=np.int64)
    return {"postings": n, "scored_pairs": len(i), "score_shift": matching.score_shift,
            "differences": matching.differences, "adapted": matching.adapted,
            "sole_code_pairs": matching.sole_code_pairs,
            "submit": figures(submitted["i"].to_numpy(), submitted["j"].to_numpy(), labels),
            "saved_postprocessing": figures(saved_i, saved_j, labels),
            "matching_nothing": figures(empty, empty, labels),
            "cut": {str(c): figures(i[p > c], j[p > c], labels)["f1"] for c in CUTS},
            "mutual_best_above_cut": {str(c): figures(*mutual_best_above(c, i, j, pairs["p"], n),
                                                      labels)["f1"] for c in CUTS}}


def mutual_best_above(cut: float, i: np.ndarray, j: np.ndarray, p, n: int):
    """The pairs ``submit``'s conservative post-processing keeps, at ``cut``."""
    processor = PostProcessor.from_params({"steps": [{"step": "threshold", "threshold": cut},
                                                     {"step": "mutual_best"}]})
    return processor.predict(i, j, p.to_numpy(), n)[:2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    matcher = Matcher.load(args.model)
    report = {"model": args.model,
              "trained_cut": matcher.bundle_.processor.steps_[0].threshold_,
              "view_dropout": (matcher.bundle_.params or {}).get("view_dropout"),
              "catalogs": {name: transfer(matcher, Path(args.data) / file)
                           for name, file in CATALOGS.items()}}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    for name, r in report["catalogs"].items():
        best = max(r["mutual_best_above_cut"].items(), key=lambda kv: kv[1])
        print(f"{name}: shift {r['score_shift']}, adapted {r['adapted']}, submit F1 "
              f"{r['submit']['f1']:.4f}, saved post-processing F1 "
              f"{r['saved_postprocessing']['f1']:.4f}, nothing {r['matching_nothing']['f1']:.4f}, "
              f"best mutual-best cut {best[0]}: {best[1]:.4f}")


if __name__ == "__main__":
    main()
