"""Which views of the postings a catalog has, against the catalog a model was trained on.

An embedder's coverage is the share of postings it gives a vector (a photo hash needs a photo,
a title vector a title). A Shopee model was trained where every posting has a photo; applied to a
title-only catalog its rankers score on the titles alone (they learnt what a missing photo means:
``view_dropout``), but its cut and post-processing were tuned, and its out-of-fold figures
measured, with photos. The model records the coverage of its training catalog, and matching
warns where an embedder's coverage differs from it by more than :data:`WARN_ABOVE`.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

WARN_ABOVE = 0.25


def coverage(embeddings) -> dict[str, float]:
    """Per embedder, the share of postings with a vector (1.0 for an empty catalog)."""
    return {e.name: round(float(1 - e.missing.mean()), 4) if len(e.missing) else 1.0
            for e in embeddings}


def coverage_gaps(trained: dict | None, catalog: dict[str, float]) -> dict[str, dict]:
    """The embedders whose coverage here is more than :data:`WARN_ABOVE` away from training
    (``{name: {"training": share, "catalog": share}}``), each logged as a warning. A model
    that recorded none (trained before the coverage was kept) is not compared."""
    gaps = {name: {"training": trained[name], "catalog": share}
            for name, share in catalog.items()
            if name in (trained or {}) and abs(share - trained[name]) > WARN_ABOVE}
    for name, gap in gaps.items():
        log.warning(f"{name} gives {gap['catalog']:.0%} of this catalog's postings a vector, "
                    f"against {gap['training']:.0%} of the training catalog's (a photo-less "
                    f"catalog, missing image files?): the model's cut and figures were measured "
                    f"on the other; check the matches on labelled pairs or train on this catalog")
    return gaps
