"""Which views of the postings a catalog has, against the catalog a model was trained on.

An embedder's coverage is the share of postings it gives a vector (a photo hash needs a photo,
a title vector a title). A Shopee model was trained where every posting has a photo; applied to a
title-only catalog its rankers score on the titles alone (they learnt what a missing photo means:
``view_dropout``), but its cut and post-processing were tuned, and its out-of-fold figures
measured, with photos. The model records the coverage of its training catalog, and matching
treats an embedder whose coverage differs from it by more than :data:`WARN_ABOVE` as a sign of
another kind of catalog (:mod:`pipeline.transfer`).
"""
from __future__ import annotations

WARN_ABOVE = 0.25


def coverage(embeddings) -> dict[str, float]:
    """Per embedder, the share of postings with a vector (1.0 for an empty catalog)."""
    return {e.name: round(float(1 - e.missing.mean()), 4) if len(e.missing) else 1.0
            for e in embeddings}


def coverage_gaps(trained: dict | None, catalog: dict[str, float]) -> dict[str, dict]:
    """The embedders whose coverage here is more than :data:`WARN_ABOVE` away from training
    (``{name: {"training": share, "catalog": share}}``). A model that recorded none (trained
    before the coverage was kept) is not compared."""
    return {name: {"training": trained[name], "catalog": share}
            for name, share in catalog.items()
            if name in (trained or {}) and abs(share - trained[name]) > WARN_ABOVE}
