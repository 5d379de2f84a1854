"""Approximate top-K search of dense vectors: a faiss inverted-file index (IVF-Flat).

Exact search costs n² products (extrapolated, an hour for a million rows on 2 busy cores).
IVF-Flat clusters the rows into ``nlist`` ≈ 4·√n cells (spherical k-means on a seeded sample)
and compares each query only with the rows of its ``nprobe`` nearest cells: about n·(nlist +
nprobe·n/nlist)·d operations. ``nprobe`` is calibrated on every catalog, since how far true
neighbours scatter over cells depends on the embedder: a seeded sample of queries is searched
exactly, and nprobe climbs a ladder until the sample keeps ``TARGET_RECALL`` of its exact top-k.
Past ``HNSW_QUANTIZER_FROM`` cells the nearest cells are found through an HNSW graph of the
centroids instead of comparing each query with all of them.

IVF was chosen over an HNSW graph of the rows after measuring both on 2 cores (README,
"Approximate search"): HNSW's build plus one search took 1.4–3× IVF's time at 35,000–140,000
rows, and its misses are whole queries (rows the graph does not reach get none of their true
neighbours), where IVF's are spread thin and calibrated. The similarities are faiss's inner
products, equal to the exact ones up to float rounding. Same inputs, same lists: the k-means,
the sample and the calibration are seeded, and each query is searched on its own thread. With
faiss on a GPU (``faiss-gpu``) and CUDA present the index runs there, with a flat quantizer; its
lists may differ from the CPU's in ties and rounding.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

TARGET_RECALL = 0.97         # on the calibration sample; the acceptance bar is 0.95
CALIBRATION_QUERIES = 1000
TRAIN_PER_CELL = 40          # k-means sample per cell (faiss asks for at least 39)
HNSW_QUANTIZER_FROM = 16384  # cells (n ≈ 16 M) from which an HNSW graph finds the nearest cells
QUERY_BLOCK = 1 << 16
SEED = 0


def cells(n: int) -> int:
    """``nlist`` for n rows: about 4·√n, with at least TRAIN_PER_CELL rows per cell."""
    return int(max(1, min(round(4 * np.sqrt(n)), n // TRAIN_PER_CELL)))


def ivf_search(vectors: np.ndarray, k: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray,
                                                                        dict]:
    """Each row's ``k`` best rows by inner product (itself among them), unordered within ties;
    -1 / -inf where fewer were found. Returns the index parameters as plain data."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dims = vectors.shape
    nlist = cells(n)
    rng = np.random.default_rng(seed)
    on_gpu = _gpu_available(faiss)
    hnsw = nlist >= HNSW_QUANTIZER_FROM and not on_gpu
    if hnsw:
        quantizer = faiss.IndexHNSWFlat(dims, 32, faiss.METRIC_INNER_PRODUCT)
        quantizer.hnsw.efSearch = 128  # faiss searches at least nprobe deep
    else:
        quantizer = faiss.IndexFlatIP(dims)
    index = faiss.IndexIVFFlat(quantizer, dims, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.spherical = True  # unit rows: centroids on the sphere, as the queries are
    if on_gpu:  # the resources must outlive the GPU index: both are locals of this call
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, 0, index)
    train = np.sort(rng.choice(n, min(n, TRAIN_PER_CELL * nlist), replace=False))
    index.train(vectors[train])
    index.add(vectors)
    nprobe, recall = _calibrate(index, vectors, k, nlist, rng, faiss)
    index.nprobe = nprobe
    found = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, QUERY_BLOCK):
        stop = min(n, start + QUERY_BLOCK)
        sims[start:stop], found[start:stop] = index.search(vectors[start:stop], k)
    # Rows whose probed cells held fewer than k rows search again, over twice the cells.
    short = np.flatnonzero(found[:, -1] < 0)
    refilled = len(short)
    while len(short) and index.nprobe < nlist:
        index.nprobe = min(nlist, 2 * index.nprobe)
        sims[short], found[short] = index.search(vectors[short], k)
        short = short[found[short, -1] < 0]
    sims[found < 0] = -np.inf
    params = {"method": "ann", "index": "ivf_flat", "quantizer": "hnsw" if hnsw else "flat",
              "nlist": nlist, "nprobe": nprobe, "refilled_rows": refilled,
              "train_rows": len(train), "seed": seed,
              "device": "cuda" if on_gpu else "cpu",
              "calibration": {"queries": min(n, CALIBRATION_QUERIES), "recall": recall,
                              "target": TARGET_RECALL}}
    log.info(f"IVF-Flat over {n:,} rows: {nlist} cells, nprobe {nprobe} "
             f"(calibrated recall {recall:.3f})")
    return found, sims, params


def _calibrate(index, vectors: np.ndarray, k: int, nlist: int, rng, faiss) -> tuple[int, float]:
    """The smallest nprobe on the ladder 1, 2, 3, 4, 6, 8, 12, … whose search keeps
    TARGET_RECALL of a seeded query sample's exact top-k (all cells: exact)."""
    sample = np.sort(rng.choice(len(vectors), min(len(vectors), CALIBRATION_QUERIES),
                                replace=False))
    queries = vectors[sample]
    exact, _ = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    # Ties at the k-th place may be broken either way: a row tied with the k-th counts too
    # (up to the rounding difference of the two inner-product kernels).
    kth = exact[:, -1] - 1e-5
    ladder = sorted({min(nlist, int(step * 2 ** power)) for power in range(32)
                     for step in (1, 1.5)} | {nlist})
    for nprobe in ladder:
        index.nprobe = nprobe
        sims, _ = index.search(queries, k)
        recall = float((sims >= kth[:, None]).sum() / sims.size)
        if recall >= TARGET_RECALL or nprobe == nlist:
            return nprobe, round(recall, 4)
    raise AssertionError("the ladder ends at nlist")


def _gpu_available(faiss) -> bool:
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        return False
    import torch

    return torch.cuda.is_available()
