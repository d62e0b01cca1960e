"""Every graph named in langgraph.json imports and builds from settings without the network."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

EXPECTED_NODES = {
    "generation": {"retriever", "reasoner", "generator", "critic", "label_corrector", "accept"},
    "chat": {"agent", "tools"},
}


def _no_network(*args: Any, **kwargs: Any) -> None:
    raise AssertionError(f"a graph touched the network while building: connect{args}")


def test_langgraph_json_graphs_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = json.loads((REPO / "langgraph.json").read_text())
    assert set(spec["graphs"]) == set(EXPECTED_NODES), "update EXPECTED_NODES for new graphs"
    monkeypatch.setenv("CLINSYNTH_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("CLINSYNTH_EMBEDDER", "hashing")
    monkeypatch.setenv("CLINSYNTH_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    for name, target in spec["graphs"].items():
        path, attr = target.split(":")
        module_spec = importlib.util.spec_from_file_location(f"lg_{name}", REPO / path)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        config = {"configurable": {"run": {"n": 1}, "data_dir": str(tmp_path / "data")}}
        graph = getattr(module, attr)(config)
        nodes = set(graph.get_graph().nodes)
        assert EXPECTED_NODES[name] <= nodes, (name, nodes)


def test_chat_graph_needs_an_openai_compatible_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from clinsynth.apps.server import chat_graph
    from clinsynth.config import ConfigError

    monkeypatch.delenv("CLINSYNTH_BASE_URL", raising=False)
    monkeypatch.setenv("CLINSYNTH_PROVIDER", "local")
    monkeypatch.setenv("CLINSYNTH_STORE", str(tmp_path / "store"))
    with pytest.raises(ConfigError, match="tool-calling"):
        chat_graph({"configurable": {}})
