"""Shared fixtures. The real Shopee data is found through the SHOPEE_DATA setting (default
``../shared/data/shopee`` beside the checkout), the title-only catalogs through CATALOG_DATA
(default ``../shared/data``); tests that need them skip with the reason when they are absent."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOPEE = Path(os.environ.get("SHOPEE_DATA", ROOT.parent / "shared" / "data" / "shopee"))
CATALOGS = Path(os.environ.get("CATALOG_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def amazon_google() -> Path:
    """The Amazon-Google catalog's postings file (titles and true groups)."""
    path = CATALOGS / "amazon_google" / "postings.csv"
    if not path.is_file():
        pytest.skip(f"Amazon-Google catalog not found at {path} (set CATALOG_DATA)")
    return path


@pytest.fixture(scope="session")
def shopee_dir() -> Path:
    if not (SHOPEE / "train.csv").is_file():
        pytest.skip(f"real Shopee data not found at {SHOPEE} (set SHOPEE_DATA to its folder)")
    return SHOPEE


@pytest.fixture(scope="session")
def shopee_train(shopee_dir: Path) -> pl.DataFrame:
    return pl.read_csv(shopee_dir / "train.csv", infer_schema=False)


def readme_cases(heading: str) -> set[str]:
    """The case names (first column, in backticks) of README's table under ``heading``, a
    subsection of "When input is wrong"."""
    section = (ROOT / "README.md").read_text().split("## When input is wrong\n", 1)[1]
    section = section.split("\n## ", 1)[0].split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.M))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python cli.py ARGS`` as a user would; returns the finished process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=900)


def train_work(root: Path, postings: Path, *extra: str, k: str = "20") -> Path:
    """`candidates` then `train-ranker` (3 folds) on ``postings`` into ``root/w``."""
    work = root / "w"
    done = run_cli("candidates", "--postings", str(postings), "--work", str(work), "--k", k,
                   *extra)
    assert done.returncode == 0, done.stderr
    done = run_cli("train-ranker", "--work", str(work), "--folds", "3")
    assert done.returncode == 0, done.stderr
    return work


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory) -> Path:
    """A finished run over a small generated catalog (60 products), shared by the report and
    browse tests; tests that change it work on a copy."""
    from datasets import generate_catalog

    root = tmp_path_factory.mktemp("generated-run")
    generate_catalog(n_products=60, seed=11).write_csv(root / "train.csv")
    return train_work(root, root / "train.csv")


def symmetric_pairs(seed: int = 0):
    """120 postings in groups of 3; every posting paired with its group and 9 random others,
    closed under symmetry and sorted, with one informative feature and one noise feature."""
    rng = np.random.default_rng(seed)
    n = 120
    labels = np.repeat(np.arange(n // 3), 3)
    i = np.repeat(np.arange(n), 12)
    j = np.concatenate([np.concatenate([np.flatnonzero(labels == labels[a]),
                                        rng.integers(0, n, 9)]) for a in range(n)])
    keys = np.unique(np.concatenate([i * n + j, j * n + i]))
    i, j = keys // n, keys % n
    keep = i != j
    i, j = i[keep], j[keep]
    y = (labels[i] == labels[j]).astype(np.float32)
    signal = y + rng.normal(0, 0.25, len(y))
    signal = (signal + signal[np.searchsorted(keys[keep], j * n + i)]) / 2  # symmetric feature
    X = np.column_stack([signal, rng.normal(size=len(y))]).astype(np.float32)
    return X, y, i, j, labels
