"""Imports flow one way: apps → tools → graphs and below; tool and app modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "clinsynth"
UPPER = ("clinsynth.apps", "clinsynth.tools")
RUNTIME = ("io", "limits", "runlock", "rundir", "tables")
"""Run-file plumbing still under ``tools/`` that every layer may use (moving to a runtime
package)."""


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _upper(name: str) -> bool:
    if name.startswith("clinsynth.tools.") and name.split(".")[2] in RUNTIME:
        return False
    return any(name == u or name.startswith(u + ".") for u in UPPER)


def test_packages_below_tools_never_import_tools_or_apps() -> None:
    below = [
        p
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE).parts[0] not in ("apps", "tools", "commands")
        and p.name not in ("cli.py", "cli_support.py")
    ]
    offenders = {
        f"{p.relative_to(PACKAGE)} imports {n}" for p in below for n in _imports(p) if _upper(n)
    }
    assert len(below) > 50
    assert offenders == set()


def test_tools_never_import_apps() -> None:
    offenders = {
        f"{p.relative_to(PACKAGE)} imports {n}"
        for p in (PACKAGE / "tools").rglob("*.py")
        for n in _imports(p)
        if n.startswith("clinsynth.apps")
    }
    assert offenders == set()


def test_tool_app_and_training_modules_stay_under_400_lines() -> None:
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
        for folder in ("apps", "tools", "finetune")
        for p in (PACKAGE / folder).rglob("*.py")
    }
    assert len(sizes) >= 25
    assert {name: n for name, n in sizes.items() if n > 400} == {}
