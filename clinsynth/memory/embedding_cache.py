"""Embed each distinct text once: vectors kept by the SHA-256 of the text, in memory and,
optionally, in a SQLite file that later runs reuse.

The label corrector embeds a data set once and then cross-validates on the matrix many times
(folds × repeated cross-validations × the k-NN view); this wrapper makes the "once" hold
across duplicate texts within a call and, with a file, across calls and processes.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import numpy as np

from clinsynth.memory.embeddings import Embedder, EmbeddingError


class EmbeddingCacheError(EmbeddingError):
    """The cache file cannot be opened or is not an embedding cache."""


def text_key(embedder_name: str, dim: int, text: str) -> str:
    """The cache key of ``text`` for one embedder (name and dimension are part of it, so two
    embedders never share vectors)."""
    return hashlib.sha256(f"{embedder_name}\x00{dim}\x00{text}".encode()).hexdigest()


class CachedEmbedder:
    """An :class:`~clinsynth.memory.embeddings.Embedder` that asks ``embedder`` only for texts
    it has not seen; ``calls`` and ``texts_embedded`` count what reached the backbone.

    ``path``: a SQLite file (created when missing) holding the vectors between runs.
    """

    def __init__(self, embedder: Embedder, path: Path | None = None) -> None:
        self.embedder = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        self.calls = 0
        self.texts_embedded = 0
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
                with self._db:
                    self._db.execute(
                        "CREATE TABLE IF NOT EXISTS vectors "
                        "(key TEXT PRIMARY KEY, vec BLOB NOT NULL)"
                    )
            except (OSError, sqlite3.Error) as exc:
                self.close()
                raise EmbeddingCacheError(
                    f"{path} cannot serve as an embedding cache ({exc})"
                ) from exc

    def _stored(self, keys: list[str]) -> None:
        """Load the vectors of ``keys`` that the file holds into memory."""
        if self._db is None or not keys:
            return
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, vec FROM vectors WHERE key IN ({marks})", chunk
            ).fetchall()
            for key, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape == (self.dim,):
                    self._vectors[key] = vec

    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text, in order; only unseen distinct texts go to the backbone, in one
        call."""
        keys = [text_key(self.name, self.dim, t) for t in texts]
        with self._lock:
            self._stored([k for k in dict.fromkeys(keys) if k not in self._vectors])
            todo: dict[str, str] = {}
            for key, text in zip(keys, texts, strict=True):
                if key not in self._vectors and key not in todo:
                    todo[key] = text
            if todo:
                vectors = np.asarray(self.embedder.embed(list(todo.values())), dtype=np.float32)
                self.calls += 1
                self.texts_embedded += len(todo)
                fresh = dict(zip(todo, vectors, strict=True))
                self._vectors.update(fresh)
                if self._db is not None:
                    with self._db:
                        self._db.executemany(
                            "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                            [(k, v.tobytes()) for k, v in fresh.items()],
                        )
            if not texts:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.stack([self._vectors[k] for k in keys])

    def close(self) -> None:
        """Close the SQLite file (the in-memory vectors stay usable)."""
        if self._db is not None:
            self._db.close()
            self._db = None
