"""The package's shape: imports flow one way (the import-linter contract in pyproject.toml)
and no module grows past 400 lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "clinsynth"


def _lint_imports() -> str:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[dev]'")
    return found


def test_the_import_layers_contract_is_kept() -> None:
    res = subprocess.run(
        [_lint_imports()], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken." in res.stdout


def test_the_contract_catches_an_upward_import(tmp_path: Path) -> None:
    """The same contract on a copy whose graphs layer imports the tools layer above it."""
    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "clinsynth", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    routing = copy / "clinsynth" / "graphs" / "routing.py"
    routing.write_text(routing.read_text() + "\nfrom clinsynth.tools import toolkit  # noqa\n")
    res = subprocess.run(
        [_lint_imports()],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PYTHONPATH": str(copy), "PATH": str(Path(sys.executable).parent)},
    )
    assert res.returncode == 1, res.stdout[-2000:]
    assert "clinsynth.graphs.routing -> clinsynth.tools.toolkit" in res.stdout


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 100
    assert {name: n for name, n in sizes.items() if n > 400} == {}
