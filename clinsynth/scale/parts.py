"""The parts of a distributed run directory, what they hold, and their merge.

Worker ``k`` writes its own run files under ``<run>/parts/w<k>/`` (``started.jsonl``,
``accepted.jsonl``, ``rejected.jsonl``, ``surplus.jsonl``, its item checkpoints and
``worker.json`` with its counts and timings). The driver merges them into the run's usual
``accepted.jsonl`` / ``rejected.jsonl`` / ``surplus.jsonl`` / ``started.jsonl`` (ordered by
item index) and ``manifest.json``. The parts stay: a rerun resumes from them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinsynth.runtime.runfiles import RunFiles, iter_jsonl, read_json, read_records
from clinsynth.schemas import ItemRecord

PARTS = "parts"
_PART = re.compile(r"w(\d+)")
STATUSES = ("accepted", "rejected", "surplus")


def part_dir(out_dir: Path, worker: int) -> Path:
    """Where worker ``worker`` writes."""
    return out_dir / PARTS / f"w{worker}"


def part_dirs(out_dir: Path) -> dict[int, Path]:
    """Worker id → part directory, for every part present."""
    root = out_dir / PARTS
    if not root.is_dir():
        return {}
    found = {}
    for path in root.iterdir():
        match = _PART.fullmatch(path.name)
        if match and path.is_dir():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


@dataclass
class Part:
    """What one worker's part holds."""

    worker: int
    records: dict[str, list[ItemRecord]]
    started: dict[int, dict[str, Any]]
    """Index → started row (``id``, ``index``, ``task``, ``quota_key``)."""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def logged_ids(self) -> set[str]:
        return {r.id for recs in self.records.values() for r in recs}

    @property
    def accepted_ids(self) -> set[str]:
        return {r.id for r in self.records["accepted"]}

    def unfinished(self) -> list[dict[str, Any]]:
        """Started rows of items this part never logged."""
        logged = self.logged_ids
        return [row for _, row in sorted(self.started.items()) if row["id"] not in logged]


def read_part(worker: int, path: Path) -> Part:
    """Read one part (torn last lines, from a killed worker, are skipped)."""
    files = RunFiles(path)
    records = {
        "accepted": read_records(files.accepted),
        "rejected": read_records(files.rejected),
        "surplus": read_records(files.surplus),
    }
    started = {int(row["index"]): row for row in iter_jsonl(files.started)}
    stats_path = path / "worker.json"
    stats = read_json(stats_path) if stats_path.exists() else {}
    return Part(worker, records, started, stats)


def read_parts(out_dir: Path) -> list[Part]:
    return [read_part(w, p) for w, p in part_dirs(out_dir).items()]


@dataclass
class Merged:
    """The run's records after a merge, by status, and the started rows."""

    records: dict[str, list[ItemRecord]]
    started: list[dict[str, Any]]
    per_worker: dict[str, dict[str, Any]]


def merge_parts(parts: list[Part], n: int) -> Merged:
    """One record per id over all parts, ordered by item index; an id logged twice (an item
    redone after its worker died having written it) keeps its first record, accepted first.
    ``n`` and the quotas were enforced by the coordinator as items were claimed; the merge
    checks it again and fails loudly rather than write more than ``n`` accepted items."""
    chosen: dict[str, ItemRecord] = {}
    for status in STATUSES:
        for part in parts:
            for rec in part.records[status]:
                chosen.setdefault(rec.id, rec)
    records: dict[str, list[ItemRecord]] = {s: [] for s in STATUSES}
    for rec in sorted(chosen.values(), key=lambda r: r.task.index):
        records[rec.status].append(rec)
    if len(records["accepted"]) > n:
        raise RuntimeError(
            f"the parts hold {len(records['accepted'])} accepted items for a target of {n}"
        )
    started: dict[str, dict[str, Any]] = {}
    for part in parts:
        for row in part.started.values():
            started.setdefault(row["id"], row)
    per_worker = {
        f"w{part.worker}": {
            "accepted": len(part.records["accepted"]),
            "rejected": len(part.records["rejected"]),
            "surplus": len(part.records["surplus"]),
            "started": len(part.started),
            **part.stats,
        }
        for part in parts
    }
    ordered = sorted(started.values(), key=lambda r: int(r["index"]))
    return Merged(records, ordered, per_worker)


def _jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def merged_passages(out_dir: Path) -> list[dict[str, Any]]:
    """The ``passages.jsonl`` rows of every part, one per chunk id (the first part's)."""
    from clinsynth.runtime.passages import PASSAGES_FILE, read_passage_rows

    rows: dict[str, dict[str, Any]] = {}
    for path in part_dirs(out_dir).values():
        for row in read_passage_rows(path / PASSAGES_FILE):
            rows.setdefault(row["id"], row)
    return list(rows.values())


def write_merged(out_dir: Path, merged: Merged) -> None:
    """Replace the run's logs with the merge (each file atomically), passages stored once
    per run as a single-process run stores them: the parts' passages first, then the rows
    without the passage text of items whose passage is stored."""
    from clinsynth.runtime.passages import compact_row
    from clinsynth.runtime.runfiles import write_bytes_atomic

    files = RunFiles(out_dir)
    passages = merged_passages(out_dir)
    write_bytes_atomic(files.passages, _jsonl_bytes(passages))
    stored = {row["id"] for row in passages}
    paths = {"accepted": files.accepted, "rejected": files.rejected, "surplus": files.surplus}
    for status, path in paths.items():
        rows = [compact_row(r.model_dump(mode="json"), stored) for r in merged.records[status]]
        write_bytes_atomic(path, _jsonl_bytes(rows))
    started = [{"id": r["id"], "index": r["index"], "task": r["task"]} for r in merged.started]
    write_bytes_atomic(files.started, _jsonl_bytes(started))
