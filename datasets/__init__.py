"""Datasets: catalogs in the postings schema that the toolkit can make by itself.

Public API: :func:`generate_catalog` (a labelled synthetic catalog, for the demo and the tests),
:func:`reworded_catalog` (a real catalog grown by reworded copies, for the scale benchmarks).
"""
from .generated import generate_catalog, reworded_catalog

__all__ = ["generate_catalog", "reworded_catalog"]
