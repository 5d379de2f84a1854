"""Approximate search (`--search ann`) against brute force, and against the exact search's time.

For each catalog size, a catalog of Shopee train rows and their reworded copies
(``datasets.reworded_catalog``, as bench/submit_70k.py builds it) is embedded with each default
vector embedder (``tfidf``: sparse, ``tfidf_char``: 128-d LSA), and

- the approximate top-K lists of every row are built (seconds; the index parameters chosen);
- ``--queries`` seeded rows are searched by brute force (their products with every row) and
  the recall of the approximate lists is measured against that: ``recall`` is the share of the
  exact top-K ids found, ``recall_tie_aware`` the share of found neighbours at least as similar
  as the exact K-th (rows tied with the K-th may be listed in its place);
- up to ``--exact-up-to`` rows, the exact search of every row is timed too (for `auto`'s
  crossover);
- with ``--hnsw``, a faiss HNSW index of every dense row is built, searched and scored the same
  way (the alternative to IVF); with ``--hnsw-quantizer``, IVF with an HNSW graph finding the
  nearest cells instead of a comparison with every centroid.

Writes one JSON report (``--out``) with the machine's load average before and after each size.

    python bench/ann_recall.py --sizes 100000,1000000 [--exact-up-to 140000] [--queries 2000]
                               [--k 50] [--hnsw] [--hnsw-quantizer] [--cache runs/ann-cache] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from candidates import ann, find_neighbours  # noqa: E402
from datasets import reworded_catalog  # noqa: E402
from embedders import create_embedder, embed_catalog  # noqa: E402

EMBEDDERS = ("tfidf", "tfidf_char")
QUERY_BLOCK = 100


def brute_force(vectors, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact top-k (ids, similarities) of the query rows, self excluded, ties by lower id;
    a sparse row's neighbours share a term (similarity > 0), the rest is -1 / -inf."""
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
    sparse = sp.issparse(vectors)
    transposed = vectors.T.tocsr() if sparse else vectors.T
    for start in range(0, len(queries), QUERY_BLOCK):
        rows = queries[start:start + QUERY_BLOCK]
        block = vectors[rows] @ transposed
        block = block.toarray() if sparse else np.asarray(block)
        block[np.arange(len(rows)), rows] = -np.inf
        if sparse:
            block[block <= 0] = -np.inf
        top = np.argpartition(-block, k, axis=1)[:, :k + 1]
        values = np.take_along_axis(block, top, axis=1)
        order = np.lexsort((top, -values), axis=1)[:, :k]
        found, found_sims = np.take_along_axis(top, order, 1), np.take_along_axis(values, order, 1)
        ids[start:start + len(rows)] = np.where(np.isfinite(found_sims), found, -1)
        sims[start:start + len(rows)] = found_sims
    return ids, sims


def recalls(found: np.ndarray, found_sims: np.ndarray, exact: np.ndarray,
            exact_sims: np.ndarray) -> dict:
    wanted = (exact >= 0).sum(axis=1)
    hits = np.array([len(np.intersect1d(a[a >= 0], e[e >= 0])) for a, e in zip(found, exact)])
    kth = np.where(wanted > 0, exact_sims[np.arange(len(exact)), np.maximum(wanted - 1, 0)],
                   np.inf)
    close = np.minimum(((found_sims >= kth[:, None] - 1e-5) & (found >= 0)).sum(axis=1), wanted)
    asked = max(1, int(wanted.sum()))
    return {"recall": round(float(hits.sum() / asked), 4),
            "recall_tie_aware": round(float(close.sum() / asked), 4),
            "worst_query_recall": round(float(np.min(hits[wanted > 0] / wanted[wanted > 0])), 4)}


def walk_steps(vectors: sp.csr_matrix, cap: int, prefix: int) -> dict:
    """Posting-list entries the exact inverted-index walk reads (Σ df², quadratic in frequent
    terms) and those the bounded walk reads (lists over ``cap`` only to their ``prefix``),
    before the bounded walk's per-row dot products."""
    df = np.diff(vectors.tocsc().indptr).astype(np.float64)
    return {"max_df": int(df.max()), "terms": len(df), "terms_over_cap": int((df > cap).sum()),
            "exact_steps": float((df * df).sum()),
            "bounded_steps": float((df * np.where(df <= cap, df, np.minimum(df, prefix))).sum())}


def hnsw(vectors: np.ndarray, queries: np.ndarray, k: int, exact: np.ndarray,
         exact_sims: np.ndarray) -> dict:
    """The alternative to IVF: a faiss HNSW graph of every row (32 links, efConstruction 40),
    its build and whole-catalog search seconds and its sampled recall, per efSearch."""
    import faiss

    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    out = {"build_seconds": round(time.perf_counter() - start, 1)}
    for ef in (64, 128, 256):
        index.hnsw.efSearch = ef
        start = time.perf_counter()
        sims, found = index.search(vectors, k + 1)
        seconds = round(time.perf_counter() - start, 1)
        keep = found[queries] != queries[:, None]  # drop self (or the last slot)
        keep[keep.all(axis=1), -1] = False
        out[f"ef{ef}"] = {"search_seconds": seconds, **recalls(
            found[queries][keep].reshape(-1, k), sims[queries][keep].reshape(-1, k), exact,
            exact_sims)}
    return out


def measure(catalog: pl.DataFrame, name: str, args, cache: Path | None) -> dict:
    start = time.perf_counter()
    embedding = embed_catalog(create_embedder(name), catalog, cache)
    out = {"embed_seconds": round(time.perf_counter() - start, 1), "kind": embedding.kind}
    vectors, missing = embedding.vectors, embedding.missing
    start = time.perf_counter()
    found, sims, info = find_neighbours(vectors, args.k, missing, "ann")
    out["ann"] = {"seconds": round(time.perf_counter() - start, 1), **info}
    rng = np.random.default_rng(args.seed)
    queries = np.sort(rng.choice(np.flatnonzero(~missing), args.queries, replace=False))
    start = time.perf_counter()
    exact, exact_sims = brute_force(vectors, queries, args.k)
    out["brute_force_seconds"] = round(time.perf_counter() - start, 1)
    out["sampled"] = {"queries": len(queries),
                      **recalls(found[queries], sims[queries], exact, exact_sims)}
    if embedding.kind == "sparse":
        out["walk"] = walk_steps(vectors, info["df_cap"], info["prefix"])
    if args.hnsw_quantizer and embedding.kind == "dense":
        flat_from, ann.HNSW_QUANTIZER_FROM = ann.HNSW_QUANTIZER_FROM, 0
        start = time.perf_counter()
        found_h, sims_h, info_h = find_neighbours(vectors, args.k, missing, "ann")
        out["ann_hnsw_quantizer"] = {"seconds": round(time.perf_counter() - start, 1), **info_h,
                                     **recalls(found_h[queries], sims_h[queries], exact,
                                               exact_sims)}
        ann.HNSW_QUANTIZER_FROM = flat_from
    if args.hnsw and embedding.kind == "dense":
        out["hnsw"] = hnsw(vectors, queries, args.k, exact, exact_sims)
    if catalog.height <= args.exact_up_to:
        start = time.perf_counter()
        exact, exact_sims, _ = find_neighbours(vectors, args.k, missing, "exact")
        out["exact_seconds"] = round(time.perf_counter() - start, 1)
        rows = np.flatnonzero(~missing)
        out["all_rows"] = recalls(found[rows], sims[rows], exact[rows], exact_sims[rows])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--train", default=str(ROOT.parent / "shared" / "data" / "shopee" /
                                               "train.csv"))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--exact-up-to", type=int, default=140_000,
                        help="also time the exact search of every row up to this size")
    parser.add_argument("--embedders", default=",".join(EMBEDDERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", help="embeddings cache folder (one sub-folder per size)")
    parser.add_argument("--hnsw", action="store_true",
                        help="also time and score an HNSW index of every dense row")
    parser.add_argument("--hnsw-quantizer", action="store_true",
                        help="also time and score IVF with an HNSW graph over its centroids")
    parser.add_argument("--out", default="bench_ann_recall.json")
    args = parser.parse_args()

    train = pl.read_csv(args.train, infer_schema=False)
    for method in ("exact", "ann"):  # compile the numba kernels outside the timings
        find_neighbours(np.eye(64, 8, dtype=np.float32), 3, method=method)
        find_neighbours(sp.csr_matrix(np.eye(64, 8, dtype=np.float32)), 3, method=method)
    report = {"k": args.k, "cpu_count": os.cpu_count(), "sizes": {}}
    for size in (int(s) for s in args.sizes.split(",")):
        catalog = reworded_catalog(train, size, args.seed)
        result = {"load_average_before": round(os.getloadavg()[0], 2)}
        for name in args.embedders.split(","):
            cache = Path(args.cache) / str(size) if args.cache else None
            result[name] = measure(catalog, name, args, cache)
            print(f"{size:,} {name}: {json.dumps(result[name])}", file=sys.stderr, flush=True)
        result["load_average_after"] = round(os.getloadavg()[0], 2)
        report["sizes"][str(size)] = result
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
