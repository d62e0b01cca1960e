"""Shared fixtures: offline environment, a small hashed-embedding store of the demo corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DEMO_CORPUS = REPO / "clinsynth" / "data" / "demo_corpus"
SHARED_DATA = Path(os.environ.get("CLINSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``live`` tests need a real endpoint or hub: run them only with CLINSYNTH_LIVE=1."""
    if os.environ.get("CLINSYNTH_LIVE") == "1":
        return
    skip = pytest.mark.skip(reason="live: set CLINSYNTH_LIVE=1 with a real endpoint")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def demo_store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Chroma store holding the demo corpus in small chunks, with the hashing embedder."""
    from clinsynth.memory.embeddings import HashingEmbedder
    from clinsynth.memory.ingest import ingest
    from clinsynth.memory.store import VectorStore

    path = tmp_path_factory.mktemp("store")
    store = VectorStore(path, HashingEmbedder(), collection="corpus")
    ingest(DEMO_CORPUS, store, chunk_size=400, chunk_overlap=40)
    return path
