"""What a collection already holds per document, so a re-ingest writes only what changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from clinsynth.memory.store import VectorStore

TRACKED = ("doc_id", "doc_hash", "chunking", "n_chunks")
"""Chunk metadata that tells whether a stored document is whole and current."""


@dataclass
class _Doc:
    chunk_ids: list[str] = field(default_factory=list)
    versions: set[tuple[object, object, object]] = field(default_factory=set)


class StoredDocs:
    """The documents of a collection: their chunk ids, text digest, chunking and count."""

    def __init__(self, store: VectorStore | None) -> None:
        self.docs: dict[str, _Doc] = {}
        for chunk_id, meta in (store.chunk_metadata(TRACKED) if store else {}).items():
            if meta.get("doc_id") is None:
                continue
            doc = self.docs.setdefault(str(meta["doc_id"]), _Doc())
            doc.chunk_ids.append(chunk_id)
            doc.versions.add((meta.get("doc_hash"), meta.get("chunking"), meta.get("n_chunks")))

    def digest(self, doc_id: str) -> object:
        """The stored text digest of ``doc_id`` (None when unknown or mixed)."""
        doc = self.docs.get(doc_id)
        return next(iter(doc.versions))[0] if doc and len(doc.versions) == 1 else None

    def owners(self, exclude: set[str]) -> dict[str, str]:
        """Text digest → id of the stored documents not in ``exclude``."""
        found = {}
        for doc_id in self.docs.keys() - exclude:
            digest = self.digest(doc_id)
            if isinstance(digest, str):
                found[digest] = doc_id
        return found

    def current(self, doc_id: str, digest: str, chunking: str) -> bool:
        """True if ``doc_id`` is stored whole with this text and chunking (nothing to write)."""
        doc = self.docs.get(doc_id)
        if doc is None or len(doc.versions) != 1:
            return False
        stored_digest, stored_chunking, n_chunks = next(iter(doc.versions))
        return (stored_digest, stored_chunking, n_chunks) == (digest, chunking, len(doc.chunk_ids))

    def stale(self, doc_id: str, written: set[str]) -> list[str]:
        """Stored chunks of ``doc_id`` that were not written again."""
        doc = self.docs.get(doc_id)
        return [c for c in doc.chunk_ids if c not in written] if doc else []
