"""Every graph named in langgraph.json imports without network and builds from settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_langgraph_json_graphs_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = json.loads((REPO / "langgraph.json").read_text())
    assert spec["graphs"], "langgraph.json names no graph"
    monkeypatch.setenv("CLINSYNTH_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("CLINSYNTH_EMBEDDER", "hashing")
    monkeypatch.setenv("CLINSYNTH_BASE_URL", "http://127.0.0.1:9/v1")
    for name, target in spec["graphs"].items():
        path, attr = target.split(":")
        module_spec = importlib.util.spec_from_file_location(f"lg_{name}", REPO / path)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        graph = getattr(module, attr)({"configurable": {"run": {"n": 1}}})
        nodes = set(graph.get_graph().nodes)
        assert {"retriever", "reasoner", "generator", "critic", "label_corrector"} <= nodes
