"""Persistent Chroma vector store of corpus chunks; we compute every embedding ourselves."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import chromadb
from chromadb.api import ClientAPI
from chromadb.config import Settings

from clinsynth.memory.embeddings import ChromaEmbeddingFunction, Embedder
from clinsynth.schemas import SourceChunk

MetadataValue = str | int | float | bool
IDS_RECHECK_S = 1.0
"""Least seconds between two checks that the cached id list still matches the collection."""
READ_AHEAD = 64
"""Chunks that ``chunk_at`` reads in one query: batch items ask for consecutive indices."""
_COLLECTION_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")


class StoreError(Exception):
    """Base class for vector store errors."""


class EmptyStoreError(StoreError):
    """The collection holds no (matching) chunks."""


class InvalidCollectionNameError(StoreError, ValueError):
    """A collection name that Chroma does not accept."""


class EmbedderMismatchError(StoreError):
    """The collection was built with a different embedder than the one given."""


def clean_metadata(metadata: dict[str, Any]) -> dict[str, MetadataValue]:
    """Make metadata storable by Chroma: drop ``None``, JSON-encode non-scalar values."""
    clean: dict[str, MetadataValue] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, str | int | float | bool):
            clean[str(key)] = value
        else:
            clean[str(key)] = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return clean


def _chroma_where(where: dict[str, Any] | None) -> dict[str, Any] | None:
    """Accept a plain ``{field: value, ...}`` filter; several fields are combined with $and."""
    if not where:
        return None
    if len(where) > 1 and not any(key.startswith("$") for key in where):
        return {"$and": [{key: value} for key, value in where.items()]}
    return where


_SERVER = re.compile(r"(https?):/+([^/]+)/*")


def server_address(location: Path | str) -> str | None:
    """``http://HOST:PORT`` when ``location`` names a Chroma server rather than a directory
    (also when it went through ``Path``, which folds ``//`` into ``/``); None otherwise."""
    match = _SERVER.fullmatch(str(location))
    return f"{match.group(1)}://{match.group(2)}" if match else None


def open_client(location: Path | str) -> ClientAPI:
    """A Chroma client: ``chromadb.HttpClient`` for a server (``chroma run``) at
    ``http(s)://HOST:PORT``, else a ``PersistentClient`` on the directory."""
    settings = Settings(anonymized_telemetry=False, allow_reset=True)
    server = server_address(location)
    if server is None:
        return chromadb.PersistentClient(path=str(location), settings=settings)
    scheme, _, hostport = server.partition("://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise StoreError(f"store address {server} needs a port: http://HOST:PORT")
    try:
        return chromadb.HttpClient(
            host=host, port=int(port), ssl=scheme == "https", settings=settings
        )
    except Exception as exc:  # chromadb raises plain ValueError/ConnectError types
        raise StoreError(f"cannot reach the Chroma server at {server}: {exc}") from exc


class VectorStore:
    """A Chroma collection (cosine space) of :class:`SourceChunk` under ``path`` (a directory,
    or ``http://HOST:PORT`` for a Chroma server shared by many machines).

    The embedder's name and dimension are recorded in the collection; reopening it with a
    different embedder raises :class:`EmbedderMismatchError`.
    """

    def __init__(self, path: Path | str, embedder: Embedder, collection: str = "corpus") -> None:
        if not _COLLECTION_NAME.fullmatch(collection):
            raise InvalidCollectionNameError(
                f"invalid collection name {collection!r}: use 3-512 characters from "
                "[a-zA-Z0-9._-], starting and ending with a letter or digit"
            )
        server = server_address(path)
        self.path = Path(path) if server is None else server
        self.embedder = embedder
        self.collection_name = collection
        self._client = open_client(path)
        self._function = ChromaEmbeddingFunction(embedder)
        self._collection = self._open()
        self._ids_cache: dict[str, tuple[int, float, list[str]]] = {}
        self._read_ahead: dict[str, SourceChunk] = {}
        self._read_ahead_ids: list[str] | None = None

    def _open(self) -> chromadb.Collection:
        collection = self._client.get_or_create_collection(
            name=self.collection_name,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": self.embedder.name, "dim": self.embedder.dim},
            embedding_function=self._function,  # type: ignore[arg-type]
        )
        meta = collection.metadata or {}
        recorded = (meta.get("embedder"), meta.get("dim"))
        if recorded != (self.embedder.name, self.embedder.dim):
            raise EmbedderMismatchError(
                f"collection {self.collection_name!r} at {self.path} was built with embedder "
                f"{recorded[0]!r} (dim {recorded[1]}), not {self.embedder.name!r} "
                f"(dim {self.embedder.dim}) — use the same embedder or re-ingest"
            )
        return collection

    def _empty_error(self) -> EmptyStoreError:
        return EmptyStoreError(
            f"collection {self.collection_name!r} at {self.path} is empty — "
            "run `clinsynth ingest` first"
        )

    def add(self, chunks: list[SourceChunk], batch_size: int = 256) -> int:
        """Upsert ``chunks`` by id in batches; return how many were written."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        batch_size = min(batch_size, self._client.get_max_batch_size())
        unique = list({chunk.id: chunk for chunk in chunks}.values())
        self._ids_cache.clear()
        for start in range(0, len(unique), batch_size):
            batch = unique[start : start + batch_size]
            texts = [chunk.text for chunk in batch]
            self._collection.upsert(
                ids=[chunk.id for chunk in batch],
                documents=texts,
                embeddings=self.embedder.embed(texts),
                metadatas=[clean_metadata(chunk.metadata) or None for chunk in batch],  # type: ignore[misc]
            )
        return len(unique)

    def query(
        self, text: str, k: int = 4, where: dict[str, Any] | None = None
    ) -> list[SourceChunk]:
        """The ``k`` chunks most similar to ``text`` (``score`` = cosine similarity), best first."""
        total = self.count()
        if total == 0:
            raise self._empty_error()
        if k < 1:
            return []
        result = self._collection.query(
            query_embeddings=self.embedder.embed([text]),
            n_results=min(k, total),
            where=_chroma_where(where),
            include=["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        documents = (result["documents"] or [[]])[0]
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [
            SourceChunk(
                id=chunk_id,
                text=document or "",
                metadata=dict(sorted((metadata or {}).items())),
                score=1.0 - float(distance),
            )
            for chunk_id, document, metadata, distance in zip(
                ids, documents, metadatas, distances, strict=True
            )
        ]

    def get(self, ids: list[str]) -> list[SourceChunk]:
        """The stored chunks with these ids, in the order asked; unknown ids are left out."""
        if not ids:
            return []
        result = self._collection.get(ids=list(ids), include=["documents", "metadatas"])
        documents = result["documents"] or []
        metadatas = result["metadatas"] or []
        found = {
            chunk_id: SourceChunk(
                id=chunk_id,
                text=document or "",
                metadata=dict(sorted((metadata or {}).items())),
            )
            for chunk_id, document, metadata in zip(
                result["ids"], documents, metadatas, strict=True
            )
        }
        return [found[chunk_id] for chunk_id in ids if chunk_id in found]

    def count(self) -> int:
        """Number of chunks in the collection."""
        return self._collection.count()

    def ids(self, where: dict[str, Any] | None = None) -> list[str]:
        """Sorted ids of all chunks (matching ``where``)."""
        return list(self._sorted_ids(where))

    def _sorted_ids(self, where: dict[str, Any] | None) -> list[str]:
        """The cached sorted ids; rebuilt after our own writes, or when another process changed
        the chunk count (checked at most every ``IDS_RECHECK_S``: a count costs a query)."""
        key = json.dumps(where, sort_keys=True, default=str) if where else ""
        now = time.monotonic()
        cached = self._ids_cache.get(key)
        if cached is not None and now - cached[1] < IDS_RECHECK_S:
            return cached[2]
        total = self.count()
        if cached is not None and cached[0] == total:
            self._ids_cache[key] = (total, now, cached[2])
            return cached[2]
        ids = sorted(self._collection.get(where=_chroma_where(where), include=[])["ids"])
        self._ids_cache[key] = (total, now, ids)
        return ids

    def chunk_at(self, index: int, where: dict[str, Any] | None = None) -> SourceChunk:
        """The ``index``-th chunk in sorted id order, modulo the number of (matching) chunks.

        Reads ``READ_AHEAD`` chunks per query and serves the next indices from them, until the
        id list is rebuilt (after our own writes, or a count change seen by ``_sorted_ids``).
        """
        for _ in range(2):
            ids = self._sorted_ids(where)
            if not ids:
                if where and self.count():
                    raise EmptyStoreError(
                        f"no chunk in collection {self.collection_name!r} at {self.path} "
                        f"matches {where}"
                    )
                raise self._empty_error()
            chunk = self._read(ids, index % len(ids))
            if chunk is not None:
                return chunk
            self._ids_cache.clear()  # deleted since the ids were listed: list them again
        raise EmptyStoreError(f"chunks of {self.path} are being deleted while read; try again")

    def _read(self, ids: list[str], position: int) -> SourceChunk | None:
        """``ids[position]`` from the read-ahead, or from one query that refills it."""
        if self._read_ahead_ids is not ids:  # the id list was rebuilt: drop what was read
            self._read_ahead, self._read_ahead_ids = {}, ids
        chunk = self._read_ahead.pop(ids[position], None)
        if chunk is None:
            # One query for the next READ_AHEAD chunks costs about what one lookup does (~1 ms).
            ahead = {c.id: c for c in self.get(ids[position : position + READ_AHEAD])}
            chunk = ahead.pop(ids[position], None)
            self._read_ahead = ahead
        return chunk

    def chunk_metadata(self, keys: tuple[str, ...]) -> dict[str, dict[str, MetadataValue]]:
        """Chunk id → the ``keys`` of its metadata that it has, for every stored chunk."""
        result = self._collection.get(include=["metadatas"])
        metadatas = result["metadatas"] or [{} for _ in result["ids"]]
        return {
            chunk_id: {k: meta[k] for k in keys if k in meta}  # type: ignore[misc]
            for chunk_id, meta in zip(result["ids"], metadatas, strict=True)
            if meta is not None
        }

    def delete(self, ids: list[str]) -> None:
        """Delete the chunks with these ids (unknown ids are ignored)."""
        batch_size = self._client.get_max_batch_size()
        for start in range(0, len(ids), batch_size):
            self._collection.delete(ids=ids[start : start + batch_size])
        self._ids_cache.clear()

    def reset(self) -> None:
        """Drop the collection and start an empty one of the same name."""
        self._client.delete_collection(self.collection_name)
        self._ids_cache.clear()
        self._collection = self._open()
