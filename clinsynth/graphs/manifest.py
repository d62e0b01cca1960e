"""What a batch run reports: live counters, the final summary and ``manifest.json``."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, Literal

from pydantic import BaseModel, Field

from clinsynth.agents.deps import Deps
from clinsynth.config import RunConfig
from clinsynth.runtime.runfiles import RunFiles, write_json_atomic
from clinsynth.schemas import Usage

StopReason = Literal[
    "target reached", "token budget", "cost budget", "wall time", "candidate limit", "aborted"
]

MANIFEST_EVERY_S = 1.0
"""Least seconds between two mid-run rewrites of ``manifest.json`` (the final one always lands)."""


class Progress(BaseModel):
    """Live counters of a run, passed to the progress callback."""

    target: int
    accepted: int = 0
    rejected: int = 0
    surplus: int = 0
    """Items stopped or set aside because the target (or a quota) was reached first."""
    started: int = 0
    in_flight: int = 0
    attempts: int = 0
    usage: Usage = Field(default_factory=Usage)
    elapsed_s: float = 0.0
    resumed_items: int = 0


class RunSummary(BaseModel):
    """What a finished (or stopped) run produced."""

    out_dir: str
    accepted: int
    rejected: int
    candidates: int
    surplus: int = 0
    unfinished: int = 0
    """Items still in flight when the run stopped (wall time, abort); a rerun resumes them."""
    stop_reason: StopReason
    detail: str = ""
    """Why it stopped, in one sentence."""
    usage: Usage
    cost: float | None = None
    quotas: dict[str, int] = Field(default_factory=dict)
    """Accepted items per quota key."""
    wall_s: float
    resumed: bool
    error: str | None = None


@functools.cache
def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the output, for the manifest (looked up once: each
    lookup scans the installed distributions)."""
    out = {}
    for name in (
        "clinsynth",
        "langgraph",
        "langchain-core",
        "langchain-openai",
        "chromadb",
        "pydantic",
        "sentence-transformers",
        "llama-cpp-python",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def stop_detail(
    reason: StopReason,
    cfg: RunConfig,
    p: Progress,
    usage: Usage,
    cost: float,
    unfinished: int,
    error: str | None,
) -> str:
    """One sentence on why the run stopped."""
    if reason == "target reached":
        return f"{p.accepted} of {cfg.n} items accepted"
    if reason == "token budget":
        return f"token budget of {cfg.token_budget} spent ({usage.total_tokens} tokens used)"
    if reason == "cost budget":
        return f"cost budget of {cfg.cost_budget:g} spent ({cost:.4g} used)"
    if reason == "wall time":
        return (
            f"wall-time limit of {cfg.wall_time_s:g}s reached with {unfinished} items "
            "in flight (they resume on rerun)"
        )
    if reason == "candidate limit":
        return (
            f"candidate limit of {cfg.candidate_limit} reached ({p.rejected} rejected; "
            "see rejected.jsonl, or raise --max-candidates)"
        )
    return f"aborted: {error}"


class ManifestWriter:
    """Writes one run's ``manifest.json``: at the start, while it runs, and at the end."""

    def __init__(
        self,
        deps: Deps,
        run: RunConfig,
        files: RunFiles,
        progress: Progress,
        *,
        t0: float,
        started_at: str,
        resumed: bool,
        extra: dict[str, Any],
    ) -> None:
        self.deps = deps
        self.run = run
        self.files = files
        self.progress = progress
        self.t0 = t0
        self.started_at = started_at
        self.resumed = resumed
        self.extra = extra
        self._written_at = -MANIFEST_EVERY_S

    def write(
        self, summary: RunSummary | None = None, error: str | None = None, *, live: bool = False
    ) -> None:
        """Write ``manifest.json``; ``live`` (mid-run) updates are skipped within a second of
        the last one, as rewriting it per item costs the event loop more than the item's logs."""
        now = time.monotonic()
        if live and now - self._written_at < MANIFEST_EVERY_S:
            return
        self._written_at = now
        p = self.progress
        llm = self.deps.llm
        manifest = {
            "run": self.run.model_dump(mode="json"),
            "recipe": {
                "name": self.deps.recipe.name,
                "prompt_version": self.deps.recipe.prompt_version,
            },
            "models": llm.describe(),
            "endpoints": {role: m.endpoint for role, m in llm.models.items()},
            "versions": package_versions(),
            "counts": {
                "accepted": p.accepted,
                "rejected": p.rejected,
                "surplus": p.surplus,
                "candidates": p.started,
                "in_flight": p.in_flight,
            },
            "tokens": p.usage.model_dump() | {"total_tokens": p.usage.total_tokens},
            "timings": {
                "started_at": self.started_at,
                "updated_at": datetime.now(UTC).isoformat(),
                "wall_s": round(time.time() - self.t0, 3),
            },
            "resumed": self.resumed,
            "finished": summary is not None,
            "stop_reason": summary.stop_reason if summary else None,
            "error": error,
            **self.extra,
        }
        write_json_atomic(self.files.manifest, manifest, durable=summary is not None)
