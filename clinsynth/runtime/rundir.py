"""What a run directory remembers (``run.json``) and which folders ``--overwrite`` may empty.

``run.json`` holds the run's fingerprint (the settings that decide its items) plus ``n``, the
model of each role and each role's endpoint. A resume must match the fingerprint and the
models; the endpoint is recorded only (the same model served at a new address makes the same
run). A ``run.json`` written before models were remembered resumes and gains them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from clinsynth.config import ConfigError, RunConfig
from clinsynth.runtime.runfiles import RunFiles, iter_jsonl, read_json, write_json_atomic
from clinsynth.runtime.runlock import LOCK_NAME

MEMORY_KEYS = ("n", "models", "endpoints")
"""Keys of ``run.json`` beyond the fingerprint."""

_SQLITE = ("checkpoints.sqlite", "reasoning_cache.sqlite")
RUN_ENTRIES = frozenset(
    {
        "accepted.jsonl",
        "rejected.jsonl",
        "surplus.jsonl",
        "started.jsonl",
        "passages.jsonl",
        "export",
        "manifest.json",
        "manifest.json.tmp",
        "run.json",
        "run.json.tmp",
        "report.html",
        "corrected.jsonl",
        "label_dropped.jsonl",
        "gold_label_decisions.jsonl",
        "analysis",
        "parts",
        LOCK_NAME,
        *(name + suffix for name in _SQLITE for suffix in ("", "-wal", "-shm", "-journal")),
    }
)
"""Everything clinsynth writes into a run directory (``generate``, ``report``, ``analyze``,
``correct-labels``; ``repair`` adds ``<name>.corrupt[.N]`` copies); anything else is the user's."""


def _models_text(models: dict[str, str]) -> str:
    names = set(models.values())
    if len(names) == 1:
        return f"model {names.pop()}"
    return "models " + ", ".join(f"{role}={name}" for role, name in sorted(models.items()))


def check_same_run(
    files: RunFiles, run: RunConfig, models: dict[str, str], endpoints: dict[str, str]
) -> bool:
    """Record the run in ``run.json``; True when resuming one. Refuses (one line) a directory
    that holds a run with other settings or models, or more accepted items than ``run.n``."""
    files.dir.mkdir(parents=True, exist_ok=True)
    fingerprint = run.fingerprint()
    resumed = files.run_config.exists()
    if resumed:
        previous = read_json(files.run_config)
        keys = set(fingerprint) | (set(previous) - set(MEMORY_KEYS))
        changed = sorted(k for k in keys if previous.get(k) != fingerprint.get(k))
        if changed:
            raise ConfigError(
                f"{files.dir} holds a run with different settings ({', '.join(changed)}); "
                "use another --out or --overwrite"
            )
        if previous.get("models") not in (None, models):
            raise ConfigError(
                f"{files.dir} holds a run made with {_models_text(previous['models'])}, not "
                f"{_models_text(models)}; use another --out or --overwrite"
            )
        accepted = len({row["id"] for row in iter_jsonl(files.accepted)})
        if accepted > run.n:
            raise ConfigError(
                f"{files.dir} already holds {accepted} accepted items, more than n={run.n}; "
                f"ask for n ≥ {accepted}, or use another --out or --overwrite"
            )
    memory = {**fingerprint, "n": run.n, "models": models, "endpoints": endpoints}
    write_json_atomic(files.run_config, memory)
    return resumed


def is_run_dir(path: Path) -> bool:
    """True for a directory ``generate`` wrote (it holds ``run.json`` or ``manifest.json``)."""
    files = RunFiles(path)
    return files.run_config.is_file() or files.manifest.is_file()


def check_overwritable(path: Path) -> None:
    """Refuse (one line) to overwrite anything but a clinsynth run directory or an empty one."""
    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(f"--overwrite: {path} is not a directory; not deleting it")
    entries = sorted(p.name for p in path.iterdir())
    if not entries or entries == [LOCK_NAME]:
        return
    foreign = [name for name in entries if name.split(".corrupt", 1)[0] not in RUN_ENTRIES]
    if not is_run_dir(path) or foreign:
        shown = ", ".join(foreign[:3]) + (" …" if len(foreign) > 3 else "")
        what = (
            "no clinsynth run"
            if not is_run_dir(path)
            else f"files clinsynth did not write ({shown})"
        )
        raise ConfigError(
            f"--overwrite: {path} holds {what}; not deleting it, choose another --out"
        )


def clear_run_dir(path: Path) -> None:
    """Delete a run directory's contents but its lock (hold the lock, see ``RunLock``)."""
    check_overwritable(path)
    for entry in path.iterdir() if path.exists() else ():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
