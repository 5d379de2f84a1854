"""Feature groups by name, and the builder that runs them over the candidate pairs."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import polars as pl

from common.console import track

from .bridges import bridge_features
from .context import PairContext
from .fused import fused_features
from .fuzzy import fuzzy_features
from .graph import graph_features
from .identifiers import identifier_features
from .neighbourhood import neighbourhood_features
from .phash import phash_features
from .similarity import similarity_features
from .source import source_features
from .tokens import token_features
from .units import unit_features

FeatureGroup = Callable[[PairContext], dict[str, np.ndarray]]

FEATURE_GROUPS: dict[str, FeatureGroup] = {
    "similarity": similarity_features,
    "fused": fused_features,
    "phash": phash_features,
    "units": unit_features,
    "fuzzy": fuzzy_features,
    "neighbourhood": neighbourhood_features,
    "graph": graph_features,
    "source": source_features,
    "tokens": token_features,
    "bridges": bridge_features,
}
# Groups built only when named (``--groups``): they pay on some catalogs, not on all.
OPTIONAL_GROUPS: dict[str, FeatureGroup] = {
    "identifiers": identifier_features,
}


@dataclass
class FeatureTable:
    """``frame`` holds ``i``, ``j`` and one float32 column per feature (NaN = missing);
    ``groups`` maps each feature column to its group."""

    frame: pl.DataFrame
    groups: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.groups)

    def matrix(self, names: list[str] | None = None) -> np.ndarray:
        return self.frame.select(names or self.names).to_numpy().astype(np.float32, copy=False)

    def row_blocks(self, names: list[str] | None = None, rows: int = 1_000_000):
        """:meth:`matrix` in blocks of ``rows`` pairs: scoring millions of pairs never holds
        the whole pairs × features matrix (3.4 GB for 8M pairs and 105 features)."""
        selected = self.frame.select(names or self.names)
        for start in range(0, selected.height, rows):
            yield selected.slice(start, rows).to_numpy().astype(np.float32, copy=False)


def view_columns(names: list[str], embeddings, modality: str = "image") -> list[str]:
    """The feature columns that read a ``modality`` view of the postings: NaN for a pair where
    either posting lacks it (no photo, an unreadable file, a title-only catalog). A column
    reads the view when it names one of that modality's embedders (``phash_hamming``,
    ``fused_tfidf_phash``, ``nb_image_mean1_i``…) or fuses across views
    (``fused_text_image``). ``embeddings``: the catalog's :class:`embedders.Embedding` s (a
    list, or a dict by name)."""
    embeddings = embeddings.values() if isinstance(embeddings, dict) else embeddings
    views = [emb.name for emb in embeddings if emb.modality == modality]
    if not views:
        return []
    tokens = [f"_{name}_" for name in views] + ["_text_image_"]
    return [col for col in names if any(t in f"_{col}_" for t in tokens)]


def build_features(ctx: PairContext, groups: list[str] | None = None) -> FeatureTable:
    """Run the named groups (those of :data:`FEATURE_GROUPS` by default; :data:`OPTIONAL_GROUPS`
    when named) over ``ctx``'s pairs."""
    groups = list(FEATURE_GROUPS) if groups is None else groups
    known = {**FEATURE_GROUPS, **OPTIONAL_GROUPS}
    unknown = sorted(set(groups) - set(known))
    if unknown:
        raise ValueError(f"unknown feature groups {unknown}; known: {sorted(known)}")
    columns: dict[str, np.ndarray] = {}
    owner: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for group in track(groups, "features"):
        start = time.perf_counter()
        for name, values in known[group](ctx).items():
            if name in owner:
                raise RuntimeError(f"feature {name!r} produced by both {owner[name]} and {group}")
            columns[name] = np.asarray(values, dtype=np.float32)
            owner[name] = group
        seconds[group] = round(time.perf_counter() - start, 3)
    frame = pl.DataFrame({"i": ctx.candidates["i"].slice(ctx.start, len(ctx)),
                          "j": ctx.candidates["j"].slice(ctx.start, len(ctx)),
                          **{name: pl.Series(name, values, nan_to_null=False)
                             for name, values in columns.items()}})
    return FeatureTable(frame, owner, seconds)
