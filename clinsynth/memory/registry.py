"""Near-duplicate registry of accepted items, kept as an in-memory matrix of embeddings."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

from clinsynth.memory.embeddings import Embedder

_RECENT = 512


class AcceptedRegistry:
    """Embeddings of accepted items, for "is this new item too close to one we have?" checks.

    Lives in memory only; on resume its caller rebuilds it from ``accepted.jsonl``.
    """

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._matrix = np.zeros((0, embedder.dim), dtype=np.float32)
        self._lock = threading.Lock()
        # The critic and the accept node embed the same candidate text; keep recent vectors.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def add(self, item_id: str, text: str) -> None:
        """Register one item; an id already registered is left as it is."""
        self.add_many([(item_id, text)])

    def add_many(self, items: Iterable[tuple[str, str]]) -> int:
        """Register ``(id, text)`` pairs with one embedding call; return how many were new."""
        with self._lock:
            new: dict[str, str] = {}
            for item_id, text in items:
                if item_id not in self._rows and item_id not in new:
                    new[item_id] = text
        if not new:
            return 0
        vectors = self.embedder.embed(list(new.values()))
        with self._lock:
            added = 0
            for item_id, vector in zip(new, vectors, strict=True):
                if item_id in self._rows:
                    continue
                self._grow(len(self._ids) + 1)
                self._matrix[len(self._ids)] = vector
                self._rows[item_id] = len(self._ids)
                self._ids.append(item_id)
                added += 1
            return added

    def _grow(self, needed: int) -> None:
        """Double the matrix capacity until ``needed`` rows fit (amortised O(1) appends)."""
        capacity = self._matrix.shape[0]
        if needed <= capacity:
            return
        bigger = np.zeros((max(needed, 2 * capacity, 16), self.embedder.dim), dtype=np.float32)
        bigger[:capacity] = self._matrix
        self._matrix = bigger

    def cached_embedding(self, text: str) -> np.ndarray | None:
        """The embedding of ``text`` if it is among the recent ones (no model call), else None."""
        with self._lock:
            cached = self._recent.get(text)
            if cached is not None:
                self._recent.move_to_end(text)
            return cached

    def embed_one(self, text: str) -> np.ndarray:
        """The (normalised) embedding of one text, for the vector variants below; the last
        ``_RECENT`` texts are remembered so a candidate is embedded once, not per check."""
        cached = self.cached_embedding(text)
        if cached is not None:
            return cached
        vector = self.embedder.embed([text])[0]
        with self._lock:
            self._recent[text] = vector
            while len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        return vector

    def nearest(self, text: str) -> tuple[str, float] | None:
        """Id and cosine similarity of the registered item most similar to ``text``."""
        with self._lock:
            if not self._ids:
                return None
        return self.nearest_vector(self.embed_one(text))

    def nearest_vector(self, vector: np.ndarray) -> tuple[str, float] | None:
        """Like :meth:`nearest` for a precomputed embedding (no model call: safe to pair
        with :meth:`add_vector` as one atomic check-then-add in async code)."""
        with self._lock:
            if not self._ids:
                return None
            similarities = self._matrix[: len(self._ids)] @ vector
            best = int(np.argmax(similarities))
            return self._ids[best], float(similarities[best])

    def add_vector(self, item_id: str, vector: np.ndarray) -> None:
        """Register a precomputed embedding; an id already registered is left as it is."""
        with self._lock:
            if item_id in self._rows:
                return
            self._grow(len(self._ids) + 1)
            self._matrix[len(self._ids)] = vector
            self._rows[item_id] = len(self._ids)
            self._ids.append(item_id)

    def discard(self, item_id: str) -> None:
        """Unregister an item (e.g. accepted by its graph, then set aside); absent ids pass."""
        with self._lock:
            row = self._rows.pop(item_id, None)
            if row is None:
                return
            last = len(self._ids) - 1
            if row != last:  # move the last row into the gap
                moved = self._ids[last]
                self._matrix[row] = self._matrix[last]
                self._ids[row] = moved
                self._rows[moved] = row
            self._ids.pop()
            self._matrix[last] = 0.0

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    def __len__(self) -> int:
        return len(self._ids)
