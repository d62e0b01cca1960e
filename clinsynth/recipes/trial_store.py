"""The trial store a trial recipe reads: the injected one, or the one its options name."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.memory.store import VectorStore


class TrialStoreAccess:
    """Opens each trial collection once, thread-safe (``trials`` and ``trial-tasks``)."""

    options: Any

    def _init_store_access(self, store: VectorStore | None) -> None:
        self._injected_store = store
        self._stores: dict[str, VectorStore] = {}
        self._lock = threading.Lock()

    def store(self, collection: str) -> VectorStore:
        """The trial store (injected, or opened from options / settings on first use)."""
        if self._injected_store is not None:
            return self._injected_store
        with self._lock:
            if collection not in self._stores:
                from clinsynth.config import Settings
                from clinsynth.memory.embeddings import make_embedder
                from clinsynth.memory.store import VectorStore

                settings = Settings()
                path = Path(self.options.store) if self.options.store else settings.store
                self._stores[collection] = VectorStore(
                    path, make_embedder(settings.embedder), collection=collection
                )
            return self._stores[collection]
