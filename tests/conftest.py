"""Shared fixtures. The real Shopee data is found through the SHOPEE_DATA setting (default
``../shared/data/shopee`` beside the checkout); tests that need it skip with the reason when it
is absent."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOPEE = Path(os.environ.get("SHOPEE_DATA", ROOT.parent / "shared" / "data" / "shopee"))


@pytest.fixture(scope="session")
def shopee_dir() -> Path:
    if not (SHOPEE / "train.csv").is_file():
        pytest.skip(f"real Shopee data not found at {SHOPEE} (set SHOPEE_DATA to its folder)")
    return SHOPEE


@pytest.fixture(scope="session")
def shopee_train(shopee_dir: Path) -> pl.DataFrame:
    return pl.read_csv(shopee_dir / "train.csv", infer_schema=False)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python cli.py ARGS`` as a user would; returns the finished process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=900)
