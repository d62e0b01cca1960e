"""Corpus loading, chunking and ingestion into the vector store, and every IngestError case."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.ingest import (
    CorpusNotFoundError,
    Document,
    EmptyCorpusError,
    IdFieldMissingError,
    InvalidChunkingError,
    MalformedFileError,
    NoSupportedFilesError,
    TextFieldMissingError,
    chunk_documents,
    ingest,
    load_documents,
)
from clinsynth.memory.store import VectorStore


def _jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _store(tmp_path: Path) -> VectorStore:
    return VectorStore(tmp_path / "db", HashingEmbedder())


def test_jsonl_defaults_text_id_and_metadata(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "notes.jsonl",
        [
            {"encounter_id": "E1", "note": "Chest pain.", "age": 50, "flag": None, "tags": [1]},
            {"note": "Headache.", "source": "clinic"},
        ],
    )
    first, second = load_documents(path)
    assert first == Document(
        id="E1",
        text="Chest pain.",
        metadata={"encounter_id": "E1", "age": 50, "source": str(path), "doc_id": "E1"},
    )
    assert second.id.startswith("doc-") and second.text == "Headache."
    assert second.metadata["record_source"] == "clinic"
    assert second.metadata["source"] == str(path)
    assert [d.id for d in load_documents(path)][1] == second.id  # stable hash id


def test_jsonl_explicit_fields_and_list_text(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "q.jsonl", [{"pubid": 7, "contexts": ["One.", "Two."], "text": "x"}])
    (doc,) = load_documents(path, text_field="contexts", id_field="pubid")
    assert doc.id == "7" and doc.text == "One.\n\nTwo."
    assert doc.metadata["text"] == "x"


def test_csv_with_quoting_and_large_field(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    big = "word " * 40_000
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["nctid", "phase", "criteria"])
        writer.writerow(["NCT1", "phase 2", 'Inclusion:\n- age, "adult"'])
        writer.writerow(["NCT2", "", big])
    one, two = load_documents(path)
    assert one.id == "NCT1" and one.text == 'Inclusion:\n- age, "adult"'
    assert one.metadata == {
        "nctid": "NCT1",
        "phase": "phase 2",
        "source": str(path),
        "doc_id": "NCT1",
    }
    assert "phase" not in two.metadata and len(two.text) == len(big)


def test_folder_of_text_files_recursive(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "b.md").write_text("# B\nbody b", encoding="utf-8")
    (corpus / "sub" / "a.txt").write_text("body a", encoding="utf-8")
    (corpus / "skip.pdf").write_bytes(b"%PDF")
    (corpus / ".hidden.txt").write_text("hidden", encoding="utf-8")
    (corpus / "PROVENANCE.md").write_text("where the data came from", encoding="utf-8")
    docs = list(load_documents(corpus))
    assert [d.id for d in docs] == ["b.md", "sub/a.txt"]
    assert docs[1].metadata == {"source": str(corpus / "sub" / "a.txt"), "doc_id": "sub/a.txt"}
    assert [d.id for d in load_documents(corpus, glob="*.md")] == ["b.md"]
    (single,) = load_documents(corpus / "sub" / "a.txt")
    assert single.id == "a.txt" and single.text == "body a"


def test_chunking_ids_offsets_and_metadata() -> None:
    text = " ".join(f"sentence{i}." for i in range(200))
    doc = Document(id="d1", text=text, metadata={"source": "s", "doc_id": "d1"})
    chunks = list(
        chunk_documents([doc, Document(id="e", text="  ")], chunk_size=300, chunk_overlap=50)
    )
    assert len(chunks) > 3
    assert [c.id for c in chunks] == [f"d1#{i}" for i in range(len(chunks))]
    for i, chunk in enumerate(chunks):
        start = chunk.metadata["start_char"]
        assert text[start : start + len(chunk.text)] == chunk.text
        assert chunk.metadata["chunk_index"] == i and chunk.metadata["n_chunks"] == len(chunks)
        assert chunk.metadata["source"] == "s" and len(chunk.text) <= 300
    assert chunks == list(chunk_documents([doc], chunk_size=300, chunk_overlap=50))


def test_ingest_into_store_with_progress_and_dedup(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "c.jsonl",
        [
            {"id": "x", "text": "aspirin for stroke prevention " * 30},
            {"id": "y", "text": "   "},
            {"id": "x", "text": "aspirin for stroke prevention " * 30},
            {"id": "x", "text": "a different document reusing an id"},
            {"id": "z", "text": "insulin for diabetes"},
        ],
    )
    store = _store(tmp_path)
    seen: list[int] = []
    stats = ingest(
        path, store, chunk_size=200, chunk_overlap=20, batch_size=3, progress=seen.append
    )
    assert (stats.documents, stats.skipped_empty, stats.duplicates) == (3, 1, 1)
    assert stats.chunks == store.count() == seen[-1] and seen[0] == 3
    assert seen == sorted(seen) and len(seen) == -(-stats.chunks // 3)
    assert stats.collection == "corpus" and stats.path == str(path)
    assert store.get(["x~2#0"])[0].metadata["doc_id"] == "x~2"
    assert store.query("insulin diabetes", k=1)[0].id == "z#0"
    again = ingest(path, store, chunk_size=200, chunk_overlap=20)
    assert (again.documents, again.unchanged, again.chunks) == (3, 3, 0)
    assert store.count() == stats.chunks


def test_error_path_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(CorpusNotFoundError, match="does not exist"):
        ingest(tmp_path / "nope", _store(tmp_path))


def test_error_no_supported_files(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.pdf").write_bytes(b"%PDF")
    (tmp_path / "corpus" / "README.md").write_text("about this folder", encoding="utf-8")
    with pytest.raises(NoSupportedFilesError, match=r"no \.jsonl, \.csv, \.txt, \.md files"):
        list(load_documents(tmp_path / "corpus"))
    with pytest.raises(NoSupportedFilesError, match="not a supported file"):
        list(load_documents(tmp_path / "corpus" / "a.pdf"))


def test_error_corpus_empty(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "e.jsonl", [{"text": ""}, {"text": "  \n"}])
    store = _store(tmp_path)
    with pytest.raises(EmptyCorpusError, match=r"no non-empty documents \(2 empty skipped\)"):
        ingest(path, store)
    assert store.count() == 0


def test_error_text_field_missing(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "t.jsonl", [{"id": 1, "body": "x", "title": "y"}])
    with pytest.raises(TextFieldMissingError, match="available columns: id, body, title"):
        list(load_documents(path))
    with pytest.raises(TextFieldMissingError, match="text field 'summary' not found"):
        list(load_documents(path, text_field="summary"))
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(TextFieldMissingError, match="available columns: a, b"):
        list(load_documents(csv_path))
    with pytest.raises(IdFieldMissingError, match="id field 'key' not found"):
        list(load_documents(path, text_field="body", id_field="key"))


def test_error_malformed_jsonl_reports_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n\n{"text": broken}\n', encoding="utf-8")
    with pytest.raises(MalformedFileError, match=r"bad\.jsonl:3: invalid JSON"):
        list(load_documents(path))
    path.write_text('["not", "an", "object"]\n', encoding="utf-8")
    with pytest.raises(MalformedFileError, match=r"bad\.jsonl:1: expected a JSON object"):
        list(load_documents(path))


def test_error_invalid_chunking(tmp_path: Path) -> None:
    with pytest.raises(InvalidChunkingError, match="chunk_overlap < chunk_size"):
        chunk_documents([], chunk_size=100, chunk_overlap=100)


def test_reset_with_jsonl_broken_at_line_401_stores_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    old = _jsonl(tmp_path / "old.jsonl", [{"id": f"o{i}", "text": f"old {i}"} for i in range(3)])
    assert ingest(old, store).chunks == 3
    rows = [json.dumps({"id": f"n{i}", "text": f"new document {i}"}) for i in range(400)]
    broken = tmp_path / "new.jsonl"
    broken.write_text("\n".join([*rows, '{"id": "n400", "text": "cut', *rows[:5]]) + "\n")
    with pytest.raises(MalformedFileError) as err:
        ingest(broken, store, reset=True)
    assert str(err.value).startswith(f"{broken}:401: invalid JSON")
    assert str(err.value).endswith("— nothing was stored")
    assert store.ids() == ["o0#0", "o1#0", "o2#0"]
    with pytest.raises(MalformedFileError):
        ingest(broken, store)
    assert store.count() == 3
    fixed = _jsonl(tmp_path / "fixed.jsonl", [{"id": "n0", "text": "new document 0"}])
    assert ingest(fixed, store, reset=True).chunks == 1
    assert store.ids() == ["n0#0"]


def test_reingest_of_edited_document_leaves_no_stale_chunks(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(" ".join(f"long sentence {i}." for i in range(60)))
    (corpus / "b.txt").write_text("short note about insulin")
    store = _store(tmp_path)
    first = ingest(corpus, store, chunk_size=200, chunk_overlap=0)
    a_chunks = len(store.ids(where={"doc_id": "a.txt"}))
    assert a_chunks > 3 and first.chunks == a_chunks + 1
    (corpus / "a.txt").write_text("now a short text about aspirin")
    second = ingest(corpus, store, chunk_size=200, chunk_overlap=0)
    assert (second.replaced, second.stale_chunks) == (1, a_chunks - 1)
    assert store.ids() == ["a.txt#0", "b.txt#0"]
    assert store.get(["a.txt#0"])[0].text == "now a short text about aspirin"
    third = ingest(corpus, store, chunk_size=200, chunk_overlap=0)
    assert (third.unchanged, third.chunks, third.replaced, store.count()) == (2, 0, 0, 2)


def test_new_chunking_or_a_partly_stored_document_is_rewritten(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "word " * 300}])
    store = _store(tmp_path)
    assert ingest(path, store, chunk_size=500, chunk_overlap=0).chunks == 3
    bigger = ingest(path, store, chunk_size=1000, chunk_overlap=0)
    assert (bigger.unchanged, bigger.chunks, bigger.stale_chunks) == (0, 2, 1)
    assert store.ids() == ["a#0", "a#1"]
    store.delete(["a#1"])  # as if a crash had cut the write short
    again = ingest(path, store, chunk_size=1000, chunk_overlap=0)
    assert (again.unchanged, again.chunks, store.ids()) == (0, 2, ["a#0", "a#1"])


def test_identical_documents_are_stored_once(tmp_path: Path) -> None:
    same = "metformin is first-line therapy for type 2 diabetes"
    path = _jsonl(
        tmp_path / "c.jsonl",
        [{"id": "p", "text": same}, {"id": "q", "text": same}, {"id": "r", "text": "other"}],
    )
    store = _store(tmp_path)
    stats = ingest(path, store)
    assert (stats.documents, stats.duplicates, stats.chunks) == (2, 1, 2)
    assert store.ids() == ["p#0", "r#0"]
    renamed = _jsonl(tmp_path / "d.jsonl", [{"id": "s", "text": same}])
    again = ingest(renamed, store)
    assert (again.documents, again.duplicates, again.chunks, store.count()) == (0, 1, 0, 2)


def test_non_utf8_corpus_says_which_encoding(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes("id,text\n1,caf\xe9 au lait\n".encode("latin-1"))
    store = _store(tmp_path)
    with pytest.raises(MalformedFileError) as err:
        ingest(path, store)
    assert str(err.value) == (
        f"{path}: not UTF-8 text (invalid continuation byte); save it as UTF-8 — nothing was stored"
    )
    assert store.count() == 0
