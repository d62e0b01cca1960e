"""Run output on disk: crash-safe JSONL logs, atomic JSON files, and reading them back.

Each JSONL line is written with one ``write`` (so a killed process never tears one) and fsynced
in groups; a line torn by a machine crash is cut off when the log is reopened, so a resumed run
never reads or extends a half-written record.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from clinsynth.config import one_line
from clinsynth.schemas import ItemRecord


class RunFileError(ValueError):
    """A run file (or a JSONL data file) that cannot be read back; the message names the file,
    the line where there is one, and how to recover."""


def recovery_hint(path: Path) -> str:
    """How to recover from a corrupt ``path``: ``clinsynth repair`` inside a run directory
    (or a distributed run's worker part, ``RUN/parts/w<k>/``)."""

    def is_run(folder: Path) -> bool:
        return (folder / "run.json").exists() or (folder / "manifest.json").exists()

    run_dir = path.parent
    if not is_run(run_dir) and run_dir.parent.name == "parts":
        run_dir = run_dir.parent.parent
    return f"run 'clinsynth repair {run_dir}'" if is_run(run_dir) else "fix or remove it"


class RunFiles:
    """The files of one run directory."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir
        self.accepted = out_dir / "accepted.jsonl"
        self.rejected = out_dir / "rejected.jsonl"
        self.surplus = out_dir / "surplus.jsonl"
        self.started = out_dir / "started.jsonl"
        self.passages = out_dir / "passages.jsonl"
        self.manifest = out_dir / "manifest.json"
        self.run_config = out_dir / "run.json"
        self.checkpoints = out_dir / "checkpoints.sqlite"
        self.lock = out_dir / ".lock"


def _repair_tail(path: Path) -> None:
    """Cut a trailing partial line (no final newline) left by a crash mid-write."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)
        fh.flush()
        os.fsync(fh.fileno())


def numbered_jsonl(
    path: Path, *, whole_last_line: bool = False
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL file; a torn last line (no newline) of a run log is
    skipped, unless ``whole_last_line`` (a data file whose writer left out the final newline).

    A line that is not a JSON object raises :class:`RunFileError` naming file and line.
    """
    if not path.exists():
        return
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip() or not (whole_last_line or raw.endswith(b"\n")):
                continue
            try:
                row = json.loads(raw)
            except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for bad bytes
                raise RunFileError(
                    f"{path}:{number}: corrupt line ({exc}); {recovery_hint(path)}"
                ) from exc
            if not isinstance(row, dict):
                raise RunFileError(
                    f"{path}:{number}: expected a JSON object, got {type(row).__name__}; "
                    f"{recovery_hint(path)}"
                )
            yield number, row


def iter_jsonl(path: Path, *, whole_last_line: bool = False) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file (see :func:`numbered_jsonl`)."""
    for _, row in numbered_jsonl(path, whole_last_line=whole_last_line):
        yield row


def read_records(path: Path) -> list[ItemRecord]:
    """The item records of ``accepted.jsonl``, ``rejected.jsonl`` or ``surplus.jsonl``, with
    each item's passage put back from the run's ``passages.jsonl`` (stored once per run)."""
    from clinsynth.runtime.passages import read_passages, restore_row

    passages = read_passages(path)
    records = []
    for number, row in numbered_jsonl(path):
        try:
            records.append(ItemRecord.model_validate(restore_row(row, passages)))
        except ValidationError as exc:
            raise RunFileError(
                f"{path}:{number}: not an item record ({one_line(exc)}); {recovery_hint(path)}"
            ) from exc
    return records


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (``manifest.json``, ``run.json``); :class:`RunFileError`
    naming the file and the recovery when it is unreadable or not an object."""
    try:
        data = json.loads(path.read_bytes())
    except ValueError as exc:
        raise RunFileError(f"{path} is corrupt ({exc}); {recovery_hint(path)}") from exc
    if not isinstance(data, dict):
        raise RunFileError(
            f"{path} is corrupt (a JSON {type(data).__name__}, not an object); "
            f"{recovery_hint(path)}"
        )
    return data


class RunRecords(NamedTuple):
    """A run's finished items by status."""

    accepted: list[ItemRecord]
    rejected: list[ItemRecord]
    surplus: list[ItemRecord]

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted of accepted + rejected: surplus items were stopped, not judged."""
        judged = len(self.accepted) + len(self.rejected)
        return round(len(self.accepted) / judged, 4) if judged else None


def read_run(files: RunFiles) -> RunRecords:
    """The records of a run; rejected rows of older runs that were surplus count as surplus."""
    rejected, surplus = [], read_records(files.surplus)
    for rec in read_records(files.rejected):
        if rec.reasons and rec.reasons[0].startswith("surplus:"):
            surplus.append(rec.model_copy(update={"status": "surplus"}))
        else:
            rejected.append(rec)
    return RunRecords(read_records(files.accepted), rejected, surplus)


class JsonlLog:
    """An append-only JSONL file keyed by ``id``; appending an id twice is a no-op.

    Every row is one ``write`` call, so a killed process never leaves half a row behind: the
    OS holds it. Only a machine crash can lose rows; ``durable`` fsyncs against that, at most
    once per ``sync_interval_s`` (group commit) and on :meth:`close`. A per-row fsync blocked
    the event loop for ~2 ms per item; rows lost in a machine crash are regenerated on resume.
    """

    def __init__(self, path: Path, *, durable: bool = True, sync_interval_s: float = 0.5) -> None:
        self.path = path
        self.durable = durable
        self.sync_interval_s = sync_interval_s
        path.parent.mkdir(parents=True, exist_ok=True)
        _repair_tail(path)
        self.ids: set[str] = {str(row["id"]) for row in iter_jsonl(path)}
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._synced_at = time.monotonic()
        self._dirty = False

    def append(self, row: BaseModel | dict[str, Any]) -> bool:
        """Write one row; False if its id is already in the file."""
        data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
        row_id = str(data["id"])
        if row_id in self.ids:
            return False
        line = (json.dumps(data, ensure_ascii=False) + "\n").encode()
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.ids.add(row_id)
        self._dirty = True
        if self.durable and time.monotonic() - self._synced_at >= self.sync_interval_s:
            self.sync()
        return True

    def sync(self) -> None:
        """fsync what was written since the last sync."""
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._synced_at = time.monotonic()

    def __len__(self) -> int:
        return len(self.ids)

    def close(self) -> None:
        if self.durable:
            self.sync()
        os.close(self._fd)


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``, never leaving a partial file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        if durable:
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` as JSON, never leaving a partial file."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    write_bytes_atomic(path, text.encode(), durable=durable)
