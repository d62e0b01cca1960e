"""``clinsynth repair RUN``: make a run directory with corrupt files readable again.

Nothing is deleted: corrupt JSONL lines go to ``<file>.corrupt``, an unreadable checkpoint
database or JSON file is moved aside as ``<file>.corrupt`` (numbered if that exists), and
``manifest.json`` / ``run.json`` are rebuilt from what is still readable.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clinsynth.cli_support import UserError, guard, out
from clinsynth.runtime.runlock import RunLock

if TYPE_CHECKING:
    from clinsynth.runtime.runfiles import RunFiles

JSONL_NAMES = (
    "passages.jsonl",
    "accepted.jsonl",
    "rejected.jsonl",
    "surplus.jsonl",
    "started.jsonl",
)


def _aside(path: Path) -> Path:
    """Move ``path`` to ``<path>.corrupt`` (or ``.corrupt.N``, never over an earlier one)."""
    target = path.with_name(path.name + ".corrupt")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt.{n}")
        n += 1
    os.replace(path, target)
    return target


def _line_ok(raw: bytes, records: bool) -> bool:
    from pydantic import ValidationError

    from clinsynth.schemas import ItemRecord

    if not raw.endswith(b"\n"):
        return False  # torn by a crash mid-write
    try:
        row = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(row, dict) or "id" not in row:
        return False
    if records:
        try:
            ItemRecord.model_validate(row)
        except ValidationError:
            return False
    return True


def _repair_jsonl(path: Path) -> str | None:
    """Move the lines of ``path`` that cannot be read back to ``<path>.corrupt``."""
    from clinsynth.runtime.runfiles import write_bytes_atomic

    if not path.is_file():
        return None
    lines = path.read_bytes().splitlines(keepends=True)
    records = path.name not in ("started.jsonl", "passages.jsonl")
    good, bad, numbers = [], [], []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if _line_ok(raw, records):
            good.append(raw)
        else:
            bad.append(raw if raw.endswith(b"\n") else raw + b"\n")
            numbers.append(number)
    if not bad:
        return None
    side = path.with_name(path.name + ".corrupt")
    with side.open("ab") as fh:
        fh.write(b"".join(bad))
        fh.flush()
        os.fsync(fh.fileno())
    write_bytes_atomic(path, b"".join(good))
    shown = ", ".join(map(str, numbers[:5])) + (" …" if len(numbers) > 5 else "")
    return (
        f"{path.name}: moved {len(bad)} unreadable line(s) (line {shown}) to {side.name}; "
        f"{len(good)} kept"
    )


DATABASES = {
    "checkpoints.sqlite": "items that were in flight restart from their first step",
    "reasoning_cache.sqlite": "cached reasoning is asked for (and paid) again",
}
"""The run's SQLite files, and what moving one aside costs the next run."""


def _repair_database(path: Path) -> str | None:
    """Move an unreadable SQLite file (and its WAL files) aside."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(str(path))
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
        if result and result[0] == "ok":
            return None
    except sqlite3.OperationalError:
        raise  # locked or an I/O error: not damage, leave the file alone
    except sqlite3.DatabaseError:
        pass
    target = _aside(path)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.replace(extra, target.with_name(target.name + suffix))
    cost = DATABASES[path.name]
    return f"{path.name}: unreadable, moved to {target.name}; {cost} on the next run"


def _readable(path: Path) -> dict[str, Any] | None:
    from clinsynth.runtime.runfiles import RunFileError, read_json

    try:
        return read_json(path) if path.is_file() else None
    except RunFileError:
        return None


def _rebuild_manifest(files: RunFiles, fingerprint: dict[str, Any] | None) -> dict[str, Any]:
    """A manifest from the (repaired) JSONL files and the run settings in ``run.json``."""
    from clinsynth.runtime.runfiles import iter_jsonl, read_records
    from clinsynth.schemas import Usage

    accepted, rejected = read_records(files.accepted), read_records(files.rejected)
    surplus = read_records(files.surplus)
    usage = Usage()
    for rec in accepted + rejected + surplus:
        usage = usage + rec.provenance.usage
    run = fingerprint or {}
    return {
        "run": run,
        "recipe": {"name": run.get("recipe")},
        "counts": {
            "accepted": len(accepted),
            "rejected": len(rejected),
            "surplus": len(surplus),
            "candidates": sum(1 for _ in iter_jsonl(files.started)),
            "in_flight": 0,
        },
        "tokens": usage.model_dump() | {"total_tokens": usage.total_tokens},
        "finished": False,
        "stop_reason": None,
        "error": None,
        "rebuilt_by": "clinsynth repair",
    }


def repair_run(run_dir: Path) -> list[str]:
    """Repair the run files of ``run_dir``; one line per thing done (empty: all readable)."""
    from clinsynth.runtime.runfiles import RunFiles

    files = RunFiles(run_dir)
    known = [files.manifest, files.run_config] + [
        run_dir / name for name in (*JSONL_NAMES, *DATABASES)
    ]
    if not run_dir.is_dir() or not any(p.exists() for p in known):
        raise UserError(f"{run_dir} is not a run directory (no run files in it)")
    from clinsynth.scale.parts import PARTS, part_dirs

    with RunLock(run_dir):  # never under a live run: a second writer is refused naming it
        done = _repair_files(run_dir, files)
        for path in part_dirs(run_dir).values():  # a distributed run's worker parts
            with RunLock(path):
                done += [f"{PARTS}/{path.name}/{line}" for line in _repair_part(path)]
        return done


def _repair_part(part: Path) -> list[str]:
    """The JSONL logs and databases of one worker part (its counts live in ``worker.json``,
    which the workers rewrite; the merge rebuilds the run's manifest)."""
    done = [line for name in JSONL_NAMES if (line := _repair_jsonl(part / name))]
    return done + [line for name in DATABASES if (line := _repair_database(part / name))]


def _repair_files(run_dir: Path, files: RunFiles) -> list[str]:
    from clinsynth.config import RunConfig
    from clinsynth.runtime.runfiles import write_json_atomic

    done = [line for name in JSONL_NAMES if (line := _repair_jsonl(run_dir / name))]
    done += [line for name in DATABASES if (line := _repair_database(run_dir / name))]
    manifest = _readable(files.manifest)
    fingerprint = _readable(files.run_config)
    if files.run_config.exists() and fingerprint is None:
        target = _aside(files.run_config)
        if manifest is not None and isinstance(manifest.get("run"), dict):
            fingerprint = RunConfig.model_validate(manifest["run"]).fingerprint()
            memory = {"n": manifest["run"].get("n")}
            memory |= {k: manifest[k] for k in ("models", "endpoints") if k in manifest}
            write_json_atomic(files.run_config, fingerprint | memory)
            done.append(f"run.json: unreadable, moved to {target.name}; rebuilt from manifest")
        else:
            done.append(
                f"run.json: unreadable, moved to {target.name}; the next generate records the "
                "settings it is given, so rerun it with the same settings as before"
            )
    if manifest is None and (files.manifest.exists() or fingerprint is not None):
        what = "missing"
        if files.manifest.exists():
            what = f"unreadable, moved to {_aside(files.manifest).name}"
        write_json_atomic(files.manifest, _rebuild_manifest(files, fingerprint))
        done.append(f"manifest.json: {what}; rebuilt from the JSONL files")
    return done


def repair_command(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by generate")],
) -> None:
    """Make a run with corrupt files readable again: moves unreadable JSONL lines, a damaged
    checkpoint database or JSON file aside (as *.corrupt) and rebuilds the manifest."""

    def _do() -> None:
        done = repair_run(run_dir)
        for line in done:
            out.print(line, markup=False, highlight=False)
        if not done:
            out.print(f"nothing to repair in {run_dir}", markup=False, highlight=False)

    guard(_do)


def register(app: typer.Typer) -> None:
    """Add ``repair`` to the CLI."""
    app.command("repair")(repair_command)
