"""VectorStore: upsert, filtered query, deterministic ids, errors, persistence across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clinsynth.memory import store as mod
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.store import (
    EmbedderMismatchError,
    EmptyStoreError,
    InvalidCollectionNameError,
    VectorStore,
)
from clinsynth.schemas import SourceChunk

REPO = Path(__file__).resolve().parents[2]

CHUNKS = [
    SourceChunk(id="a#0", text="aspirin reduces the risk of stroke", metadata={"topic": "cardio"}),
    SourceChunk(id="b#0", text="insulin therapy for type 2 diabetes", metadata={"topic": "endo"}),
    SourceChunk(
        id="c#0", text="aspirin and clopidogrel after stenting", metadata={"topic": "cardio"}
    ),
    SourceChunk(
        id="d#0", text="metformin dose for diabetes in elderly", metadata={"topic": "endo"}
    ),
]


def _store(path: Path, collection: str = "corpus") -> VectorStore:
    return VectorStore(path, HashingEmbedder(), collection=collection)


def _run_python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_query_ranks_by_cosine_and_filters(tmp_path: Path) -> None:
    store = _store(tmp_path / "db")
    assert store.add(CHUNKS) == 4
    hits = store.query("aspirin stroke", k=2)
    assert [h.id for h in hits] == ["a#0", "c#0"]
    assert hits[0].score is not None and hits[1].score is not None
    assert 0.0 < hits[1].score < hits[0].score <= 1.0 + 1e-6
    filtered = store.query("aspirin stroke", k=4, where={"topic": "endo"})
    assert {h.id for h in filtered} == {"b#0", "d#0"}
    assert all(h.metadata["topic"] == "endo" for h in filtered)
    assert store.query("aspirin", k=10)[0].id in {"a#0", "c#0"}
    assert len(store.query("aspirin", k=10)) == 4


def test_upsert_is_idempotent_and_updates(tmp_path: Path) -> None:
    store = _store(tmp_path / "db")
    store.add(CHUNKS)
    store.add(CHUNKS)
    assert store.count() == 4
    changed = SourceChunk(id="a#0", text="new text", metadata={"topic": "neuro"})
    store.add([changed])
    assert store.count() == 4
    (got,) = store.get(["a#0"])
    assert got.text == "new text" and got.metadata == {"topic": "neuro"}
    assert store.ids(where={"topic": "cardio"}) == ["c#0"]


def test_metadata_is_coerced(tmp_path: Path) -> None:
    store = _store(tmp_path / "db")
    meta = {"n": 3, "x": 0.5, "ok": True, "tags": ["a", "b"], "gone": None}
    store.add([SourceChunk(id="m", text="some text", metadata=meta)])
    assert store.get(["m"])[0].metadata == {"n": 3, "x": 0.5, "ok": True, "tags": '["a", "b"]'}
    store.add([SourceChunk(id="bare", text="no metadata at all")])
    assert store.get(["bare"])[0].metadata == {}


def test_get_ids_and_chunk_at_are_deterministic(tmp_path: Path) -> None:
    store = _store(tmp_path / "db")
    store.add(list(reversed(CHUNKS)))
    assert store.ids() == ["a#0", "b#0", "c#0", "d#0"]
    assert [c.id for c in store.get(["d#0", "missing", "a#0"])] == ["d#0", "a#0"]
    assert store.chunk_at(0).id == "a#0"
    assert store.chunk_at(5).id == "b#0"
    assert store.chunk_at(1, where={"topic": "endo"}).id == "d#0"
    assert store.chunk_at(2, where={"topic": "endo"}).id == "b#0"
    store.add([SourceChunk(id="0#0", text="first now", metadata={"topic": "endo"})])
    assert store.chunk_at(0).id == "0#0"
    with pytest.raises(EmptyStoreError, match="matches"):
        store.chunk_at(0, where={"topic": "nothing"})


def test_chunk_at_reads_ahead_in_one_query_and_drops_it_on_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path / "db")
    store.add([SourceChunk(id=f"n{i:03d}", text=f"note {i}") for i in range(100)])
    queries: list[list[str]] = []
    get = store.get
    monkeypatch.setattr(store, "get", lambda ids: queries.append(ids) or get(ids))
    walked = [store.chunk_at(i) for i in range(70)]
    assert [c.id for c in walked] == [f"n{i:03d}" for i in range(70)]
    assert [c.text for c in walked] == [f"note {i}" for i in range(70)]
    assert [len(q) for q in queries] == [mod.READ_AHEAD, 100 - mod.READ_AHEAD]
    # A chunk deleted behind the cached id list: the ids are listed again, and the index
    # lands on the chunk now there, never on a neighbour read for another index.
    store._collection.delete(ids=["n050"])
    assert store.chunk_at(50).id == "n051"
    # Our own write rebuilds the id list, so nothing read before it is served.
    store.add([SourceChunk(id="n080", text="rewritten")])
    assert store.chunk_at(79).text == "rewritten"


def test_empty_store_errors(tmp_path: Path) -> None:
    store = _store(tmp_path / "db", collection="notes")
    with pytest.raises(EmptyStoreError, match=r"collection 'notes' at .* is empty — run"):
        store.query("anything")
    with pytest.raises(EmptyStoreError, match="is empty"):
        store.chunk_at(0)
    assert store.ids() == [] and store.count() == 0


def test_reset_drops_everything(tmp_path: Path) -> None:
    store = _store(tmp_path / "db")
    store.add(CHUNKS)
    store.reset()
    assert store.count() == 0 and store.ids() == []
    store.add(CHUNKS[:1])
    assert store.ids() == ["a#0"]


@pytest.mark.parametrize("name", ["ab", "-abc", "has space", "x" * 513])
def test_invalid_collection_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidCollectionNameError, match="invalid collection name"):
        _store(tmp_path / "db", collection=name)


def test_reopening_with_another_embedder_fails(tmp_path: Path) -> None:
    _store(tmp_path / "db").add(CHUNKS)
    with pytest.raises(EmbedderMismatchError, match="dim 256"):
        VectorStore(tmp_path / "db", HashingEmbedder(dim=64))


def test_written_in_subprocess_read_here(tmp_path: Path) -> None:
    db = tmp_path / "db"
    chunks = json.dumps([c.model_dump() for c in CHUNKS])
    _run_python(
        "import json, sys; from pathlib import Path\n"
        "from clinsynth.memory.embeddings import HashingEmbedder\n"
        "from clinsynth.memory.store import VectorStore\n"
        "from clinsynth.schemas import SourceChunk\n"
        f"chunks = [SourceChunk(**c) for c in json.loads({chunks!r})]\n"
        f"VectorStore(Path({str(db)!r}), HashingEmbedder()).add(chunks)\n"
    )
    store = _store(db)
    assert store.count() == 4
    assert store.query("metformin elderly", k=1)[0].id == "d#0"


def test_written_here_read_in_subprocess(tmp_path: Path) -> None:
    db = tmp_path / "db"
    _store(db).add(CHUNKS)
    out = _run_python(
        "from pathlib import Path\n"
        "from clinsynth.memory.embeddings import HashingEmbedder\n"
        "from clinsynth.memory.store import VectorStore\n"
        f"store = VectorStore(Path({str(db)!r}), HashingEmbedder())\n"
        "print(store.count(), store.query('insulin diabetes', k=1)[0].id)\n"
    )
    assert out.split() == ["4", "b#0"]
