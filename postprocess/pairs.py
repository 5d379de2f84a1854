"""The 50-match cap. Symmetrising and per-query ranks live in :mod:`common.pairs`."""
from __future__ import annotations

MAX_MATCHES = 50  # Kaggle's rule, self included
