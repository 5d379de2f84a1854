"""Learning curves of the `label` loop with simulated answers (oracle mode): per-posting F1
over the whole catalog, against its true groups, of the model trained on the first N answers,
for active learning and for uniformly drawn candidate pairs, in rounds of 50.

Each catalog's postings are copied without their label_group (the loop never sees the groups;
only the oracle does), candidates are found with the default settings, and the oracle answers
from the original file. The F1 of N answers is what `train-ranker --labels` + `submit` +
`evaluate` give on that catalog (the same model and cut; the README shows one such run).

    python bench/active_learning.py --out bench/active_learning.json \
        --plot docs/active_learning.png [--data ../shared/data] [--catalogs amazon_google] \
        [--seeds 42,1,2,3,4,5,6] [--groups similarity,...,source] [--no-sources]

The two title-only catalogs join two shops' offers, and their posting ids say which
(`amz_`/`ggl_`, `abt_`/`buy_`): the copy states it in a `source` column (the `source` feature
group) unless --no-sources. Shopee train's ids name no source.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.postings import load_postings  # noqa: E402
from pipeline import Matcher  # noqa: E402
from pipeline.labelling import LabellingSession, oracle_truth, run_oracle  # noqa: E402
from pipeline.pair_training import LabelledCandidates  # noqa: E402
from pipeline.settings import feature_groups  # noqa: E402
from pipeline.stages import Candidates  # noqa: E402

# catalog → (file under --data, answers per strategy run, whether the id prefix is the source)
CATALOGS = {"amazon_google": ("amazon_google/postings.csv", 500, True),
            "abt_buy": ("abt_buy/postings.csv", 500, True),
            "shopee": ("shopee/train.csv", 1000, False)}


def unlabelled_copy(postings: Path, path: Path, sources: bool) -> None:
    """The postings without label_group; ``sources``: with a ``source`` column, the posting
    id up to its first underscore."""
    frame = load_postings(postings).drop("label_group")
    if sources:
        frame = frame.with_columns(pl.col("posting_id").str.extract(r"^([^_]+)_", 1)
                                   .alias("source"))
    frame.write_csv(path)


def curves(name: str, postings: Path, budget: int, strategies: list[str], work: Path,
           seeds: list[int], groups: list[str] | None = None, sources: bool = False) -> dict:
    unlabelled = work / "postings.csv"
    unlabelled_copy(postings, unlabelled, sources)
    start = time.perf_counter()
    Matcher(cache_dir=work / "work").find_candidates(unlabelled)
    candidates_seconds = time.perf_counter() - start
    start = time.perf_counter()
    labelled = LabelledCandidates.build(Candidates.load(work / "work"), groups)
    features_seconds = time.perf_counter() - start
    truth = oracle_truth(postings, labelled.candidates.postings["posting_id"])
    result = {"postings": labelled.n, "groups": groups or "default (with identifiers)",
              "sources": sources,
              "candidate_pairs": int(len(labelled.i)),
              "seconds": {"candidates": round(candidates_seconds, 1),
                          "features": round(features_seconds, 1)}}
    for strategy in strategies:
        start = time.perf_counter()
        session = LabellingSession(labelled, work / f"{strategy}.csv", strategy=strategy,
                                   source="oracle")
        result[strategy] = run_oracle(session, truth, budget)
        result["seconds"][strategy] = round(time.perf_counter() - start, 1)
        print(name, strategy, [(row["answered"], round(row["f1"], 4))
                               for row in result[strategy]], flush=True)
    # The spread over the sampler's seeds (its first round's strata draws, the boosters'
    # bagging): the active curve again for each further seed.
    for seed in seeds[1:]:
        session = LabellingSession(labelled, work / f"active-{seed}.csv", strategy="active",
                                   source="oracle", seed=seed)
        curve = run_oracle(session, truth, budget)
        result.setdefault("active_by_seed", {})[str(seed)] = [
            {"answered": row["answered"], "f1": row["f1"]} for row in curve]
        print(name, "active, seed", seed, [(row["answered"], round(row["f1"], 4))
                                            for row in curve], flush=True)
    return result


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6))
    for ax, (name, result) in zip(getattr(axes, "flat", [axes]), results.items()):
        for strategy, style in (("active", "-o"), ("random", "--s")):
            if strategy in result:
                rows = result[strategy]
                ax.plot([r["answered"] for r in rows], [r["f1"] for r in rows], style,
                        markersize=3, label=strategy)
        ax.set_title(f"{name} ({result['postings']:,} postings)")
        ax.set_xlabel("labelled pairs")
        ax.set_ylabel("per-posting F1 (whole catalog)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--catalogs", default=",".join(CATALOGS))
    parser.add_argument("--strategies", default="active,random")
    parser.add_argument("--seeds", default="42", help="sampler seeds: the first gives the "
                        "curves, each further one another active curve (active_by_seed)")
    parser.add_argument("--groups", help="the rankers' feature groups, as `label --groups` "
                        "(default: label's, the default groups and identifiers)")
    parser.add_argument("--no-sources", action="store_true", help="leave the title-only "
                        "catalogs without their source column")
    parser.add_argument("--out", required=True)
    parser.add_argument("--plot")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {}
    for name in args.catalogs.split(","):
        file, budget, id_source = CATALOGS[name]
        with tempfile.TemporaryDirectory(prefix=f"al-{name}-") as work:
            results[name] = curves(name, Path(args.data) / file, budget,
                                   args.strategies.split(","), Path(work),
                                   [int(seed) for seed in args.seeds.split(",")],
                                   feature_groups(args.groups),
                                   id_source and not args.no_sources)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        plot(results, Path(args.plot))


if __name__ == "__main__":
    main()
