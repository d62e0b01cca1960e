"""Trials in the vector store: ingestion with their split, reading records back, the
intervention balance filter and the training-split index."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from clinsynth.datasets.trials.facts import TrialFacts
from clinsynth.datasets.trials.schema import (
    LABELS,
    Split,
    TrialError,
    TrialRecord,
    normalize_name,
    trial_text,
)
from clinsynth.schemas import SourceChunk

if TYPE_CHECKING:  # chromadb loads only where a store is used, not to read trial files
    from clinsynth.memory.store import VectorStore


class TrialIngestStats(BaseModel):
    """What :func:`ingest_trials` did."""

    trials: int
    labelled: int
    kept_eval: int = Field(0, description="ids already stored as eval that stayed eval")


def trial_chunk(record: TrialRecord, split: Split) -> SourceChunk:
    """The stored form of a trial: its text, and metadata to filter and rebuild it by."""
    names = [normalize_name(n) for n in record.interventions]
    return SourceChunk(
        id=record.id,
        text=trial_text(record),
        metadata={
            "trial_id": record.id,
            "label": record.label or "unknown",
            "phase": record.phase or "unknown",
            "split": split,
            "source": record.source,
            "intervention": names[0] if names else "none",
            "interventions": names,
            "record": record.model_dump_json(exclude={"label_check"}),
            **({"facts": record.facts.model_dump_json()} if record.facts else {}),
        },
    )


def ingest_trials(
    records: Iterable[TrialRecord], store: VectorStore, split: Split = "train"
) -> TrialIngestStats:
    """Store trials (upsert by NCT id). An id already stored as ``eval`` stays ``eval``,
    so a trial that is in any evaluation set can never become a generation example."""
    recs = list({r.id: r for r in records}.values())
    kept_eval = 0
    chunks = []
    existing = {c.id: c.metadata.get("split") for c in store.get([r.id for r in recs])}
    for rec in recs:
        this_split: Split = split
        if existing.get(rec.id) == "eval" and split != "eval":
            this_split = "eval"
            kept_eval += 1
        chunks.append(trial_chunk(rec, this_split))
    store.add(chunks)
    return TrialIngestStats(
        trials=len(recs),
        labelled=sum(r.label is not None for r in recs),
        kept_eval=kept_eval,
    )


def record_of(chunk: SourceChunk) -> TrialRecord:
    """Rebuild the trial stored in a chunk."""
    raw = chunk.metadata.get("record")
    if not isinstance(raw, str):
        raise TrialError(f"chunk {chunk.id} is not a stored trial (no 'record' metadata)")
    record = TrialRecord.model_validate_json(raw)
    facts = chunk.metadata.get("facts")
    if isinstance(facts, str):
        record.facts = TrialFacts.model_validate_json(facts)
    return record


def balanced_interventions(
    rows: Iterable[tuple[Iterable[str], str | None]],
    *,
    min_success: int = 3,
    min_failure: int = 3,
    exclude: Iterable[str] = (),
) -> dict[str, dict[str, int]]:
    """The balance filter: interventions named in at least ``min_success`` successful and
    ``min_failure`` failed trials. ``rows`` are (interventions, label) per trial; returns
    intervention → label counts, sorted by name."""
    skip = {normalize_name(x) for x in exclude}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for names, label in rows:
        if label not in LABELS:
            continue
        for name in {normalize_name(n) for n in names} - skip:
            if name:
                counts[name][label] += 1
    return {
        name: {"success": c["success"], "failure": c["failure"]}
        for name, c in sorted(counts.items())
        if c["success"] >= min_success and c["failure"] >= min_failure
    }


class TrialIndex:
    """Which training-split trials name which intervention, per label (read from a store)."""

    def __init__(self, chunks: Iterable[SourceChunk]) -> None:
        self.by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.rows: list[tuple[list[str], str | None]] = []
        for chunk in chunks:
            meta = chunk.metadata
            if meta.get("split") != "train":
                continue
            names = json.loads(meta.get("interventions") or "[]")
            label = meta.get("label")
            self.rows.append((names, label))
            for name in set(names):
                self.by_pair[(name, str(label))].append(chunk.id)

    @classmethod
    def from_store(cls, store: VectorStore) -> TrialIndex:
        """Index every trial stored in ``store``."""
        return cls(store.get(store.ids()))

    def ids(self, intervention: str, label: str | None = None) -> list[str]:
        """Sorted training ids naming ``intervention`` (with ``label``, or any label)."""
        labels = [label] if label else list(LABELS)
        name = normalize_name(intervention)
        return sorted({i for lab in labels for i in self.by_pair.get((name, lab), [])})


# --- labelled examples for training ---------------------------------------------------
