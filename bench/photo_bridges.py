"""Photo bridges as a candidate source: what they would add to a work directory's lists
(the candidates add them by default: out 5, in 20, 8-bit links, lists cut to 41; this bench
measures other settings over one work directory's saved lists).

Two postings whose perceptual hashes are at most ``radius`` bits apart show the same photo
(a link; 95 % of the links are matches on Shopee train at 2 bits). A product posted 40 times
is titled 40 ways, and a posting's text list reaches the titles worded like its own; the
linked posting's list reaches others. For a link (a, b) and each vector embedder's saved lists
(``neighbours/<name>.index.npy``), a bridge pairs a with b's best ``out`` neighbours and with
the postings that list b among their best ``in``. A catalog without photos has no links, so
its candidates stay as they are.

For a work directory made by ``cli.py candidates`` on a labelled catalog with a hash embedder,
the report gives, per radius, out and in depth, and per list depth ``k`` (each list cut to its
best k, the photo pairs at the candidates' radius kept), the candidate pairs per posting and
the candidate recall of the lists with and without the bridges.

    python bench/photo_bridges.py --work W [--hash phash] [--radii 2,4,6,8]
        [--list-depths 40,42,44,46,48,50] [--out-depths 0,5] [--in-depths 0,8,20]
        [--out F.json]

The recall line of issue 15 asks for 0.95 on Shopee train at ≤ 120 pairs per posting.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from candidate_keys import labelled_candidates, list_entries, saved_lists  # noqa: E402
from candidates import candidate_recall  # noqa: E402
from candidates.blocks import hash_block_pairs  # noqa: E402
from candidates.bridges import bridge_keys as candidate_bridges  # noqa: E402
from common.pairs import pair_keys, split_keys, unique_keys  # noqa: E402


def both_ways(rows: np.ndarray, cols: np.ndarray, n: int) -> list[np.ndarray]:
    """The keys of the pairs (row, col) and (col, row)."""
    return [pair_keys(rows, cols, n), pair_keys(cols, rows, n)]


def ints(text: str) -> list[int]:
    return [int(value) for value in text.split(",")]


def listed_keys(lists: list[np.ndarray], depth: int) -> np.ndarray:
    """Keys of the pairs each list's best ``depth`` entries make, both ways."""
    n = len(lists[0])
    keys = [np.empty(0, np.int64)]
    for index in lists:
        keys += both_ways(*list_entries(index, depth), n)
    return unique_keys(np.concatenate(keys))


def bridge_keys(a: np.ndarray, b: np.ndarray, lists: list[np.ndarray], out_depth: int,
                in_depth: int) -> np.ndarray:
    """Keys of the bridge pairs of the links (a, b) through every list, both ways
    (:func:`candidates.bridges.bridge_keys`, which the candidates use)."""
    return unique_keys(np.concatenate([np.empty(0, np.int64), *(
        candidate_bridges(a, b, index, out_depth, in_depth) for index in lists)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--hash", default="phash")
    parser.add_argument("--radii", default="2,4,6,8")
    parser.add_argument("--list-depths", default="40,42,44,46,48,50")
    parser.add_argument("--out-depths", default="0,5")
    parser.add_argument("--in-depths", default="0,8,20")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    labels, keys = labelled_candidates(args.work)
    n = len(labels)
    suffix = ".index.npy"
    names = sorted(p.name[:-len(suffix)] for p in (args.work / "neighbours").glob(f"*{suffix}"))
    lists = list(saved_lists(args.work, names).values())
    depth = min(index.shape[1] for index in lists)
    hashes = np.load(args.work / "embeddings" / args.hash / "vectors.npy")
    missing = np.load(args.work / "embeddings" / args.hash / "missing.npy")
    blocks = pair_keys(*hash_block_pairs(hashes, missing), n)  # the candidates' photo pairs

    def recall(pair_set: np.ndarray) -> float:
        return round(candidate_recall(*split_keys(pair_set, n), labels), 4)

    report = {"work": str(args.work), "lists": names, "list_depth_saved": depth,
              "postings": n, "pairs_per_posting": round(len(keys) / n, 2),
              "recall": recall(keys), "rows": []}
    print(f"{n:,} postings, lists {names} saved {depth} deep, "
          f"{report['pairs_per_posting']} pairs per posting, recall {report['recall']}")
    bases = {k: unique_keys(np.concatenate([listed_keys(lists, k), blocks]))
             for k in ints(args.list_depths) if k <= depth}
    base_recall = {k: recall(base) for k, base in bases.items()}
    for radius in ints(args.radii):
        a, b = hash_block_pairs(hashes, missing, radius=radius)
        for out_depth, in_depth in itertools.product(ints(args.out_depths), ints(args.in_depths)):
            bridges = bridge_keys(a, b, lists, out_depth, in_depth)
            for k, base in bases.items():
                both = np.union1d(base, bridges)
                row = {"radius": radius, "links": len(a), "out": out_depth, "in": in_depth,
                       "list_depth": k, "pairs_per_posting": round(len(both) / n, 2),
                       "recall": recall(both), "without_bridges": base_recall[k],
                       "pairs_per_posting_without": round(len(base) / n, 2)}
                report["rows"].append(row)
                print(" ".join(f"{key}={value}" for key, value in row.items()), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
