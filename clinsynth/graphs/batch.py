"""The batch runner: fan items out over the item graph, up to ``max_concurrency`` at a time.

Guarantees, in order of importance:
- every started candidate ends in ``accepted.jsonl`` or ``rejected.jsonl`` (nothing dropped);
- exactly ``n`` accepted items, unless a budget (tokens, candidates) stops the run first;
- a killed run resumes: task ids are deterministic, each item's graph is checkpointed in
  SQLite, finished items are skipped and unfinished ones continue from their last step.

The pool is an asyncio worker pool rather than one LangGraph ``Send`` superstep, because a
superstep waits for its slowest item and cannot stop at an exact count; each item still runs
through the compiled LangGraph state machine with its own checkpoint thread.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from clinsynth.agents.deps import Deps
from clinsynth.config import ConfigError
from clinsynth.graphs.generation import build_item_graph, initial_state, recursion_limit
from clinsynth.llm import UsageMeter
from clinsynth.memory.checkpoint import open_checkpointer
from clinsynth.schemas import (
    Attempt,
    CriticReport,
    ItemRecord,
    LabelChange,
    Provenance,
    SourceChunk,
    Task,
    Usage,
)
from clinsynth.tools.io import JsonlLog, RunFiles, read_records, write_json_atomic

StopReason = Literal["target reached", "token budget", "candidate limit", "aborted"]

FATAL_ERRORS: tuple[type[BaseException], ...] = ()
"""Exception types that abort the run instead of rejecting one item (set by ``register_fatal``)."""


def register_fatal(*types: type[BaseException]) -> None:
    """Declare exception types (endpoint down, empty store) that must stop the whole run."""
    global FATAL_ERRORS
    FATAL_ERRORS = tuple(dict.fromkeys((*FATAL_ERRORS, *types)))


class RunAborted(RuntimeError):
    """The run stopped on an error that would fail every item; rerun the command to resume."""


class Progress(BaseModel):
    """Live counters of a run, passed to the progress callback."""

    target: int
    accepted: int = 0
    rejected: int = 0
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
    stop_reason: StopReason
    usage: Usage
    wall_s: float
    resumed: bool
    error: str | None = None


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the output, for the manifest."""
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


def build_record(final: dict[str, Any], deps: Deps) -> ItemRecord:
    """Turn an item's final graph state into its JSONL record."""
    task = Task.model_validate(final["task"])
    attempts = [Attempt.model_validate(a) for a in final.get("attempts") or []]
    report = CriticReport.model_validate(final["report"]) if final.get("report") else None
    chunks = [SourceChunk.model_validate(c) for c in final.get("chunks") or []]
    status: Literal["accepted", "rejected"] = (
        "accepted" if final.get("status") == "accepted" else "rejected"
    )
    item = final.get("candidate")
    if item is None:
        item = next((a.item for a in reversed(attempts) if a.item is not None), None)
    provenance = Provenance(
        source_ids=[c.id for c in chunks],
        recipe=deps.recipe.name,
        model=deps.llm.describe().get("generator", "unknown"),
        prompt_version=deps.recipe.prompt_version,
        attempts=len(attempts),
        critic_scores=report.scores() if report else {},
        label_changes=[LabelChange.model_validate(c) for c in final.get("label_changes") or []],
        usage=Usage.model_validate(final.get("usage") or {}),
        duration_s=round(time.time() - final["started_at"], 4) if final.get("started_at") else None,
    )
    reasons = list(final.get("reasons") or [])
    if status == "rejected" and not reasons:
        reasons = ["rejected without a reason from the graph"]
    return ItemRecord(
        id=task.id,
        status=status,
        task=task,
        item=item,
        provenance=provenance,
        reasons=reasons,
        history=attempts,
    )


class BatchRunner:
    """Runs one generation job into ``out_dir``; call :meth:`run` again to resume it."""

    def __init__(
        self,
        deps: Deps,
        out_dir: Path,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        extra_manifest: dict[str, Any] | None = None,
        meter: UsageMeter | None = None,
    ) -> None:
        self.deps = deps
        self.run_cfg = deps.run
        self.files = RunFiles(out_dir)
        self.on_progress = on_progress
        self.extra_manifest = extra_manifest or {}
        self.progress = Progress(target=deps.run.n)
        self.meter = meter

    def _check_same_run(self) -> bool:
        """True when resuming; refuses a directory that holds a different run."""
        files = self.files
        files.dir.mkdir(parents=True, exist_ok=True)
        fingerprint = self.run_cfg.fingerprint()
        if files.run_config.exists():
            import json

            previous = json.loads(files.run_config.read_text())
            if previous != fingerprint:
                changed = sorted(k for k in fingerprint if previous.get(k) != fingerprint.get(k))
                raise ConfigError(
                    f"{files.dir} holds a run with different settings ({', '.join(changed)}); "
                    "use another --out or --overwrite"
                )
            return True
        write_json_atomic(files.run_config, fingerprint)
        return False

    def task_for(self, index: int) -> Task:
        """The deterministic task at ``index`` (same seed and index → same task)."""
        rng = random.Random(f"{self.run_cfg.seed}:{index}")
        return self.deps.recipe.make_task(index, self.run_cfg, rng)

    async def run(self) -> RunSummary:
        """Run until the target, a budget, or a fatal error; always leaves a manifest."""
        t0 = time.time()
        started_at = datetime.now(UTC).isoformat()
        resumed = self._check_same_run()
        files = self.files
        accepted = JsonlLog(files.accepted)
        rejected = JsonlLog(files.rejected)
        # Task ids are deterministic, so a lost "started" row only means the task is relaunched
        # under the same id (and resumed from its checkpoint): no fsync needed there.
        started = JsonlLog(files.started, durable=False)
        prior_usage = Usage()
        for rec in read_records(files.accepted):
            self.deps.registry.add(rec.id, self.deps.recipe.text_for_similarity(rec.item or {}))
            prior_usage = prior_usage + rec.provenance.usage
        for rec in read_records(files.rejected):
            prior_usage = prior_usage + rec.provenance.usage
        done = accepted.ids | rejected.ids
        started_rows = sorted(
            ((int(i.rsplit("-", 1)[-1]), i) for i in started.ids), key=lambda p: p[0]
        )
        pending = [idx for idx, tid in started_rows if tid not in done]
        next_index = started_rows[-1][0] + 1 if started_rows else 0
        p = self.progress
        p.accepted, p.rejected, p.started = len(accepted), len(rejected), len(started)
        p.resumed_items = len(pending)
        p.usage = prior_usage
        base_usage = prior_usage
        meter_start = self.meter.total().total_tokens if self.meter else 0
        error: str | None = None
        stop_reason: StopReason = "target reached"

        def tokens_used() -> int:
            # The meter also counts calls of items still in flight; records only finished ones.
            if self.meter is None:
                return base_usage.total_tokens
            return prior_usage.total_tokens + self.meter.total().total_tokens - meter_start

        def may_start_new() -> bool:
            budget = self.run_cfg.token_budget
            return (
                error is None
                and p.accepted + p.in_flight < self.run_cfg.n
                and p.started < self.run_cfg.candidate_limit
                and (budget is None or tokens_used() < budget)
            )

        async with open_checkpointer(files.checkpoints) as saver:
            graph = build_item_graph(self.deps, saver)
            limit = recursion_limit(self.run_cfg.max_attempts)

            async def run_item(task: Task) -> ItemRecord:
                config: Any = {"configurable": {"thread_id": task.id}, "recursion_limit": limit}
                snapshot = await graph.aget_state(config)
                if snapshot.values and not snapshot.next and snapshot.values.get("status"):
                    final = snapshot.values
                elif snapshot.values:
                    final = await graph.ainvoke(None, config)
                else:
                    state = initial_state(task, self.run_cfg.max_attempts, time.time())
                    final = await graph.ainvoke(state, config)
                return build_record(final, self.deps)

            tasks: dict[asyncio.Task[ItemRecord], Task] = {}

            def launch(task: Task) -> None:
                tasks[asyncio.create_task(run_item(task))] = task
                p.in_flight = len(tasks)

            try:
                while True:
                    while len(tasks) < self.run_cfg.max_concurrency and error is None:
                        if pending:
                            launch(self.task_for(pending.pop(0)))
                        elif may_start_new():
                            task = self.task_for(next_index)
                            next_index += 1
                            started.append({"id": task.id, "index": task.index})
                            p.started = len(started)
                            launch(task)
                        else:
                            break
                    if not tasks:
                        break
                    finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for fut in finished:
                        task = tasks.pop(fut)
                        p.in_flight = len(tasks)
                        exc = fut.exception()
                        if exc is not None and isinstance(exc, FATAL_ERRORS):
                            error = error or str(exc)
                            continue
                        record = self._error_record(task, exc) if exc is not None else fut.result()
                        if record.status == "accepted" and p.accepted >= self.run_cfg.n:
                            record = record.model_copy(
                                update={
                                    "status": "rejected",
                                    "reasons": ["surplus: the target was reached first"],
                                }
                            )
                        log = accepted if record.status == "accepted" else rejected
                        if log.append(record):
                            base_usage = base_usage + record.provenance.usage
                        p.accepted, p.rejected = len(accepted), len(rejected)
                        p.attempts += record.provenance.attempts
                        p.usage = base_usage
                        p.elapsed_s = time.time() - t0
                        self._write_manifest(started_at, t0, None, None, resumed)
                        if self.on_progress:
                            self.on_progress(p)
            finally:
                for fut in tasks:
                    fut.cancel()
                if tasks:
                    await asyncio.gather(*tasks, return_exceptions=True)
                accepted.close()
                rejected.close()
                started.close()

        budget = self.run_cfg.token_budget
        if error is not None:
            stop_reason = "aborted"
        elif p.accepted >= self.run_cfg.n:
            stop_reason = "target reached"
        elif budget is not None and tokens_used() >= budget:
            stop_reason = "token budget"
        else:
            stop_reason = "candidate limit"
        summary = RunSummary(
            out_dir=str(files.dir),
            accepted=p.accepted,
            rejected=p.rejected,
            candidates=p.started,
            stop_reason=stop_reason,
            usage=base_usage,
            wall_s=round(time.time() - t0, 3),
            resumed=resumed,
            error=error,
        )
        self._write_manifest(started_at, t0, summary, error, resumed)
        if error is not None:
            raise RunAborted(error)
        return summary

    def _error_record(self, task: Task, exc: BaseException) -> ItemRecord:
        """A rejected record for an item whose graph raised (kept, never dropped)."""
        provenance = Provenance(
            recipe=self.deps.recipe.name,
            model=self.deps.llm.describe().get("generator", "unknown"),
            prompt_version=self.deps.recipe.prompt_version,
            attempts=0,
        )
        return ItemRecord(
            id=task.id,
            status="rejected",
            task=task,
            item=None,
            provenance=provenance,
            reasons=[f"error: {type(exc).__name__}: {exc}"],
        )

    def _write_manifest(
        self,
        started_at: str,
        t0: float,
        summary: RunSummary | None,
        error: str | None,
        resumed: bool,
    ) -> None:
        p = self.progress
        manifest = {
            "run": self.run_cfg.model_dump(mode="json"),
            "recipe": {
                "name": self.deps.recipe.name,
                "prompt_version": self.deps.recipe.prompt_version,
            },
            "models": self.deps.llm.describe(),
            "versions": package_versions(),
            "counts": {
                "accepted": p.accepted,
                "rejected": p.rejected,
                "candidates": p.started,
                "in_flight": p.in_flight,
            },
            "tokens": p.usage.model_dump() | {"total_tokens": p.usage.total_tokens},
            "timings": {
                "started_at": started_at,
                "updated_at": datetime.now(UTC).isoformat(),
                "wall_s": round(time.time() - t0, 3),
            },
            "resumed": resumed,
            "finished": summary is not None,
            "stop_reason": summary.stop_reason if summary else None,
            "error": error,
            **self.extra_manifest,
        }
        write_json_atomic(self.files.manifest, manifest, durable=summary is not None)
