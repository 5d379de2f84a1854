"""The stage layering (docs/design.md) is a contract checked by import-linter (.importlinter):
it holds on this tree and breaks when a stage imports a later one."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("common", "datasets", "embedders", "candidates", "features", "ranker", "postprocess",
            "pipeline", "report")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    command = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(command), "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_layer_contract_holds():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_a_back_import_breaks_the_contract(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    model = tmp_path / "ranker" / "model.py"
    model.write_text(model.read_text() + "\n\ndef _late():\n    from postprocess import PostProcessor\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "ranker.model -> postprocess" in done.stdout, done.stdout


def test_no_package_imports_the_command_line():
    pattern = re.compile(r"^\s*(import cli\b|from cli import)", flags=re.M)
    offenders = [str(path.relative_to(ROOT)) for package in PACKAGES
                 for path in (ROOT / package).rglob("*.py") if pattern.search(path.read_text())]
    assert offenders == []
