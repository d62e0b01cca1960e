"""Load a corpus (JSONL, CSV, text/markdown files), split it into chunks, store the chunks."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from clinsynth.memory.dedup import Dedup, digest
from clinsynth.memory.store import VectorStore
from clinsynth.memory.stored_docs import StoredDocs
from clinsynth.schemas import SourceChunk

TABLE_SUFFIXES = (".jsonl", ".csv")
TEXT_SUFFIXES = (".txt", ".md")
SUPPORTED_SUFFIXES = TABLE_SUFFIXES + TEXT_SUFFIXES
TEXT_FIELDS = (
    "text",
    "context",
    "note",
    "content",
    "abstract",
    "medical_abstract",
    "section_text",
    "criteria",
)
ID_FIELDS = ("id", "doc_id", "document_id", "encounter_id", "nctid")
RESERVED_METADATA = ("source", "doc_id", "doc_hash", "chunking")
SKIPPED_STEMS = frozenset(
    {"readme", "provenance", "license", "notice", "changelog", "contributing"}
)
"""Documentation files skipped when walking a folder (not when named directly)."""


class IngestError(Exception):
    """Base class for corpus loading and ingestion errors."""


class CorpusNotFoundError(IngestError):
    """The corpus path does not exist."""


class NoSupportedFilesError(IngestError):
    """No file of a supported type was found."""


class EmptyCorpusError(IngestError):
    """The corpus holds no non-empty document."""


class TextFieldMissingError(IngestError):
    """A table has no usable text column."""


class IdFieldMissingError(IngestError):
    """A table lacks the id column asked for."""


class MalformedFileError(IngestError):
    """A file cannot be parsed; the message names file and line."""


class InvalidChunkingError(IngestError, ValueError):
    """Chunk size and overlap do not fit together."""


class Document(BaseModel):
    """One corpus document before chunking."""

    id: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class IngestStats(BaseModel):
    """What one :func:`ingest` call did."""

    documents: int = 0
    """Documents of the corpus the collection now holds."""
    unchanged: int = 0
    """Of those, documents already stored with the same text and chunking (not rewritten)."""
    chunks: int = 0
    """Chunks written."""
    skipped_empty: int = 0
    duplicates: int = 0
    """Documents left out because the same text was already read or stored (any id)."""
    replaced: int = 0
    """Stored documents whose text changed: their chunks were rewritten."""
    stale_chunks: int = 0
    """Chunks of re-ingested documents that the new text no longer has, deleted."""
    collection: str
    path: str
    """The corpus that was read."""
    store_path: str
    seconds: float = 0.0


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(_as_text(part) for part in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _pick_field(
    columns: list[str],
    chosen: str | None,
    defaults: tuple[str, ...],
    source: Path,
    error: type[IngestError],
) -> str | None:
    """The column to use: ``chosen`` if present, else the first default present, else None."""
    if chosen is not None:
        if chosen not in columns:
            what = "text" if error is TextFieldMissingError else "id"
            raise error(
                f"{source}: {what} field {chosen!r} not found; available columns: "
                f"{', '.join(columns) or '(none)'}"
            )
        return chosen
    return next((name for name in defaults if name in columns), None)


class _Table:
    """Turns the records of one JSONL/CSV file into documents."""

    def __init__(
        self, source: Path, columns: list[str], text_field: str | None, id_field: str | None
    ) -> None:
        self.source = source
        picked = _pick_field(columns, text_field, TEXT_FIELDS, source, TextFieldMissingError)
        if picked is None:
            raise TextFieldMissingError(
                f"{source}: no text column found (looked for {', '.join(TEXT_FIELDS)}); "
                f"available columns: {', '.join(columns) or '(none)'} — pass --text-field"
            )
        self.text_key = picked
        self.id_key = _pick_field(columns, id_field, ID_FIELDS, source, IdFieldMissingError)

    def document(self, record: dict[str, Any]) -> Document:
        text = _as_text(record.get(self.text_key))
        raw_id = record.get(self.id_key) if self.id_key else None
        doc_id = str(raw_id) if raw_id not in (None, "") else f"doc-{digest(text)}"
        metadata: dict[str, Any] = {}
        for key, value in record.items():
            if key == self.text_key or value is None or value == "":
                continue
            if isinstance(value, str | int | float | bool):
                name = f"record_{key}" if key in RESERVED_METADATA else key
                metadata[name] = value
        metadata["source"] = str(self.source)
        metadata["doc_id"] = doc_id
        return Document(id=doc_id, text=text, metadata=metadata)


def _read_jsonl(source: Path, text_field: str | None, id_field: str | None) -> Iterator[Document]:
    table: _Table | None = None
    with source.open(encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MalformedFileError(
                    f"{source}:{line_number}: invalid JSON ({exc.msg})"
                ) from exc
            if not isinstance(record, dict):
                raise MalformedFileError(
                    f"{source}:{line_number}: expected a JSON object, got {type(record).__name__}"
                )
            if table is None:
                table = _Table(source, list(record), text_field, id_field)
            yield table.document(record)


def _read_csv(source: Path, text_field: str | None, id_field: str | None) -> Iterator[Document]:
    csv.field_size_limit(2**31 - 1)
    with source.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            table = _Table(source, list(reader.fieldnames or []), text_field, id_field)
            for row in reader:
                yield table.document({k: v for k, v in row.items() if k is not None})
        except csv.Error as exc:
            raise MalformedFileError(f"{source}:{reader.line_num}: {exc}") from exc


def _read_text(source: Path, doc_id: str) -> Iterator[Document]:
    text = source.read_text(encoding="utf-8-sig")
    yield Document(id=doc_id, text=text, metadata={"source": str(source), "doc_id": doc_id})


def _corpus_files(path: Path, glob: str) -> list[Path]:
    if path.is_file():
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise NoSupportedFilesError(
                f"{path} is not a supported file; use one of {', '.join(SUPPORTED_SUFFIXES)}"
            )
        return [path]
    files = sorted(
        file
        for file in path.glob(glob)
        if file.is_file()
        and file.suffix.lower() in SUPPORTED_SUFFIXES
        and file.stem.lower() not in SKIPPED_STEMS
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    if not files:
        raise NoSupportedFilesError(
            f"no {', '.join(SUPPORTED_SUFFIXES)} files under {path} matching {glob!r}"
        )
    return files


def load_documents(
    path: Path,
    *,
    text_field: str | None = None,
    id_field: str | None = None,
    glob: str = "**/*",
) -> Iterator[Document]:
    """Yield the documents of a JSONL/CSV/.txt/.md file or of such files under a folder.

    Table rows become documents (text from ``text_field`` or the first of :data:`TEXT_FIELDS`,
    id from ``id_field``, the first of :data:`ID_FIELDS`, or a hash of the text; other scalar
    columns become metadata). A text file is one document whose id is its path relative to the
    folder. In a folder, hidden files and README/PROVENANCE/LICENSE-like files are skipped.
    Metadata always has ``source`` (the file) and ``doc_id``.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusNotFoundError(f"corpus path {path} does not exist")
    root = path.parent if path.is_file() else path
    for source in _corpus_files(path, glob):
        suffix = source.suffix.lower()
        try:
            if suffix == ".jsonl":
                yield from _read_jsonl(source, text_field, id_field)
            elif suffix == ".csv":
                yield from _read_csv(source, text_field, id_field)
            else:
                yield from _read_text(source, source.relative_to(root).as_posix())
        except UnicodeDecodeError as exc:
            raise MalformedFileError(
                f"{source}: not UTF-8 text ({exc.reason}); save it as UTF-8"
            ) from exc


def _check_chunking(chunk_size: int, chunk_overlap: int) -> None:
    if chunk_size < 1 or chunk_overlap < 0 or chunk_overlap >= chunk_size:
        raise InvalidChunkingError(
            f"need chunk_size >= 1 and 0 <= chunk_overlap < chunk_size, "
            f"got chunk_size={chunk_size}, chunk_overlap={chunk_overlap}"
        )


def chunk_documents(
    docs: Iterable[Document], chunk_size: int = 1200, chunk_overlap: int = 150
) -> Iterator[SourceChunk]:
    """Split documents into overlapping chunks with ids ``{doc_id}#{i}``; empty ones yield none.

    Chunk metadata is the document's plus ``chunk_index``, ``n_chunks`` and ``start_char``.
    """
    _check_chunking(chunk_size, chunk_overlap)
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True
    )
    return _chunks(docs, splitter)


def _chunks(docs: Iterable[Document], splitter: Any) -> Iterator[SourceChunk]:
    for doc in docs:
        if not doc.text.strip():
            continue
        pieces = splitter.create_documents([doc.text])
        for index, piece in enumerate(pieces):
            yield SourceChunk(
                id=f"{doc.id}#{index}",
                text=piece.page_content,
                metadata={
                    **doc.metadata,
                    "doc_id": doc.id,
                    "chunk_index": index,
                    "n_chunks": len(pieces),
                    "start_char": piece.metadata["start_index"],
                },
            )


def _read_all(
    path: Path, dedup: Dedup, text_field: str | None, id_field: str | None
) -> list[Document]:
    """Every document of the corpus, or the first error: nothing is written before this."""
    try:
        docs = list(dedup(load_documents(path, text_field=text_field, id_field=id_field)))
    except IngestError as exc:
        raise type(exc)(f"{exc} — nothing was stored") from exc
    if not docs:
        raise EmptyCorpusError(
            f"corpus at {path} has no non-empty documents ({dedup.skipped_empty} empty "
            "skipped) — nothing was stored"
        )
    return docs


def _write(
    store: VectorStore,
    chunks: Iterable[SourceChunk],
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> set[str]:
    """Upsert ``chunks`` in batches; the ids written."""
    written: set[str] = set()
    batch: list[SourceChunk] = []
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) >= batch_size:
            written.update(c.id for c in batch)
            store.add(batch, batch_size=batch_size)
            if progress is not None:
                progress(len(written))
            batch = []
    if batch:
        written.update(c.id for c in batch)
        store.add(batch, batch_size=batch_size)
        if progress is not None:
            progress(len(written))
    return written


def ingest(
    path: Path,
    store: VectorStore,
    *,
    text_field: str | None = None,
    id_field: str | None = None,
    chunk_size: int = 1200,
    chunk_overlap: int = 150,
    batch_size: int = 256,
    reset: bool = False,
    progress: Callable[[int], None] | None = None,
) -> IngestStats:
    """Load, chunk and upsert a corpus into ``store``.

    The whole corpus is parsed before anything is written, so a broken file stores nothing
    (and ``reset`` empties the collection only then). A document stored whole with the same
    text and chunking is left as is; one whose text or chunking changed is rewritten and its
    chunks the new version lacks are deleted (no stale chunks); a text already stored under
    another id is left out, so identical documents are stored once.
    ``progress`` is called after each batch with the number of chunks written so far.
    """
    started = time.perf_counter()
    dedup = Dedup()
    docs = _read_all(path, dedup, text_field, id_field)
    _check_chunking(chunk_size, chunk_overlap)
    if reset:
        store.reset()
    stored = StoredDocs(None if reset else store)
    chunking = f"{chunk_size}/{chunk_overlap}"
    elsewhere = stored.owners(exclude={doc.id for doc in docs})
    kept = [doc for doc in docs if doc.metadata["doc_hash"] not in elsewhere]
    todo = [
        Document(id=d.id, text=d.text, metadata={**d.metadata, "chunking": chunking})
        for d in kept
        if not stored.current(d.id, d.metadata["doc_hash"], chunking)
    ]
    chunks = chunk_documents(todo, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    written = _write(store, chunks, batch_size, progress)
    stale = [c for doc in todo for c in stored.stale(doc.id, written)]
    store.delete(stale)
    return IngestStats(
        documents=len(kept),
        unchanged=len(kept) - len(todo),
        chunks=len(written),
        skipped_empty=dedup.skipped_empty,
        duplicates=dedup.duplicates + len(docs) - len(kept),
        replaced=sum(stored.digest(d.id) not in (None, d.metadata["doc_hash"]) for d in todo),
        stale_chunks=len(stale),
        collection=store.collection_name,
        path=str(path),
        store_path=str(store.path),
        seconds=round(time.perf_counter() - started, 3),
    )
