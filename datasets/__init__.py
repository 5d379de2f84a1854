"""Datasets: catalogs in the postings schema that the toolkit can make by itself.

Public API: :func:`generate_catalog` (a labelled synthetic catalog, for the demo and the tests).
"""
from .generated import generate_catalog

__all__ = ["generate_catalog"]
