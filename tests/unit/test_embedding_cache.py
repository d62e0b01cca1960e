"""Each distinct text reaches the backbone once: counted embedding calls and texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clinsynth.memory.embedding_cache import CachedEmbedder
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.tools.labels import OursSettings, correct_labels


class CountingEmbedder:
    """Hashing features; counts calls and the texts it was asked for."""

    name = "counting"

    def __init__(self) -> None:
        self.inner = HashingEmbedder(dim=256)
        self.dim = self.inner.dim
        self.calls = 0
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.embed(texts)


WORDS = {
    "cardio": ["heart", "atrial", "murmur", "stent", "angina", "troponin", "aorta"],
    "neuro": ["seizure", "migraine", "cortex", "stroke", "aphasia", "tremor", "gait"],
}


def _data() -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for label, words in WORDS.items():
        for i in range(20):
            texts.append(" ".join(rng.choice(words, 8)) + f" case {i % 15}")
            labels.append(label)
    texts += texts[:6]  # duplicates: embedded once
    labels += labels[:6]
    return texts, labels


def test_cached_embedder_embeds_each_distinct_text_once() -> None:
    counting = CountingEmbedder()
    cached = CachedEmbedder(counting)
    first = cached.embed(["a b", "c d", "a b"])
    assert counting.calls == 1 and counting.texts == ["a b", "c d"]
    again = cached.embed(["c d", "a b", "e f"])
    assert counting.calls == 2 and counting.texts[2:] == ["e f"]
    np.testing.assert_array_equal(first[0], again[1])
    np.testing.assert_array_equal(first[0], first[2])
    assert cached.embed([]).shape == (0, counting.dim)
    assert (cached.calls, cached.texts_embedded) == (2, 3)


def test_correct_labels_embeds_once_across_folds_and_repeats(tmp_path: Path) -> None:
    texts, labels = _data()
    distinct = len(set(texts))
    counting = CountingEmbedder()
    cached = CachedEmbedder(counting, tmp_path / "vectors.sqlite")
    settings = OursSettings(repeats=3, knn_k=5)
    first = correct_labels(texts, labels, embedder=cached, folds=5, settings=settings)
    assert counting.calls == 1, "5 folds × 3 repeats + the k-NN view share one embedding call"
    assert sorted(counting.texts) == sorted(set(texts)) and len(counting.texts) == distinct
    assert first[0].backbone == "counting"
    second = correct_labels(texts, labels, method="argmax", embedder=cached, folds=3)
    assert counting.calls == 1 and len(second) == len(texts)
    cached.close()
    # a later process: the SQLite file answers, the backbone is not called at all
    fresh = CountingEmbedder()
    again = correct_labels(
        texts,
        labels,
        embedder=fresh,
        embedding_cache=tmp_path / "vectors.sqlite",
        folds=5,
        settings=settings,
    )
    assert fresh.calls == 0
    assert [d.flagged for d in again] == [d.flagged for d in first]
