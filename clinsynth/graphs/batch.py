"""The batch runner: fan items out over the item graph, a pool of them at a time (``pool_size``).

Guarantees, in order of importance:
- every started candidate ends in ``accepted.jsonl``, ``rejected.jsonl`` or ``surplus.jsonl``
  (nothing dropped); surplus items were stopped or set aside because the target was reached;
- exactly ``n`` accepted items, unless a budget (tokens, candidates) stops the run first;
- one writer per run directory (``tools.runlock``); the near-duplicate registry holds exactly
  the accepted items, so a resumed run decides as an uninterrupted one would;
- a killed run resumes: task ids are deterministic, each item's graph is checkpointed in
  SQLite, finished items are skipped and unfinished ones continue from their last step;
- an error of a type in ``Deps.fatal`` (the endpoint or the store is unusable, see
  ``agents.deps.run_stopping_errors``) aborts the run with :class:`RunAborted`; any other
  error rejects its item only.

The pool is an asyncio worker pool rather than one LangGraph ``Send`` superstep, because a
superstep waits for its slowest item and cannot stop at an exact count; each item still runs
through the compiled LangGraph state machine with its own checkpoint thread. The run's state
and the decisions on it live in :class:`~clinsynth.graphs.run_state.RunState`, the records in
``graphs.records``, the manifest and summary in ``graphs.manifest``.
"""

from __future__ import annotations

import functools
import random
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Durability

from clinsynth.agents.deps import Deps
from clinsynth.graphs.generation import build_item_graph, initial_state, recursion_limit
from clinsynth.graphs.manifest import (
    ManifestWriter,
    Progress,
    RunSummary,
    StopReason,
    package_versions,
)
from clinsynth.graphs.records import build_record
from clinsynth.graphs.run_state import ItemRun, RunState, launch_target, pool_size
from clinsynth.llm import UsageMeter, current_item
from clinsynth.runtime import aio
from clinsynth.runtime.checkpoint import open_checkpointer
from clinsynth.runtime.inference import inference_for_run
from clinsynth.runtime.limits import call_rank
from clinsynth.runtime.rundir import check_same_run
from clinsynth.runtime.runfiles import RunFiles, iter_jsonl
from clinsynth.runtime.runlock import RunLock
from clinsynth.schemas import ItemRecord, Task

__all__ = [
    "BatchRunner",
    "Progress",
    "RunAborted",
    "RunSummary",
    "StopReason",
    "build_record",
    "launch_target",
    "package_versions",
    "pool_size",
]


class RunAborted(RuntimeError):
    """The run stopped on an error that would fail every item; rerun the command to resume."""


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
        lock: RunLock | None = None,
        gc_tuning: bool = False,
    ) -> None:
        """``lock``: the run directory's lock, held by the caller (the CLI takes it before
        ``--overwrite`` empties the directory); without it :meth:`run` takes its own.
        ``gc_tuning``: run under ``aio.quiet_gc`` (process-wide: for a process that runs
        nothing else, such as the CLI's; a host application's collector is left alone)."""
        self.deps = deps
        self.gc_tuning = gc_tuning
        self.run_cfg = deps.run
        self.files = RunFiles(out_dir)
        if lock is not None and (not lock.held or lock.path != self.files.lock):
            raise ValueError(f"the lock passed is not held on {out_dir}")
        self.lock = lock
        self.on_progress = on_progress
        self.extra_manifest = extra_manifest or {}
        self.progress = Progress(target=deps.run.n)
        self.meter = meter
        self.quota_accepted: Counter[str] = Counter()

    def _check_same_run(self) -> bool:
        """True when resuming; refuses a directory that holds another run (see ``rundir``)."""
        llm = self.deps.llm
        endpoints = {role: model.endpoint for role, model in llm.models.items()}
        return check_same_run(self.files, self.run_cfg, llm.describe(), endpoints)

    def _rng(self, index: int) -> random.Random:
        return random.Random(f"{self.run_cfg.seed}:{index}")

    def task_for(self, index: int) -> Task:
        """The deterministic task at ``index`` (same seed and index → same task)."""
        return self.deps.recipe.make_task(index, self.run_cfg, self._rng(index))

    def task_for_quota(self, index: int, key: str) -> Task:
        """The task at ``index`` for quota ``key`` (a label or a topic, per ``quota_by``)."""
        field = {self.run_cfg.quota_by: key}
        return self.deps.recipe.make_task_for(index, self.run_cfg, self._rng(index), **field)

    def quota_key(self, task: Task, item: dict[str, Any] | None = None) -> str | None:
        """The quota an item counts against: its final label (or the task's topic)."""
        if self.run_cfg.quota_by == "topic":
            return task.topic
        if item is not None:
            return self.deps.recipe.label_of(task, item)
        return task.label

    def started_tasks(self) -> list[Task]:
        """The tasks in ``started.jsonl``, logged whole as quotas make them depend on run state."""
        tasks = []
        for row in iter_jsonl(self.files.started):
            # Rows written before tasks were logged whole hold only the index.
            tasks.append(
                Task.model_validate(row["task"]) if "task" in row else self.task_for(row["index"])
            )
        return sorted(tasks, key=lambda t: t.index)

    async def run(self) -> RunSummary:
        """Run until the target, a budget, or a fatal error; always leaves a manifest. The run
        directory is locked first; model inference runs in the run's own thread pool
        (``clinsynth.runtime.inference``)."""
        with aio.quiet_gc() if self.gc_tuning else nullcontext():
            if self.lock is not None:
                return await self._run_with_models()
            with RunLock(self.files.dir):
                return await self._run_with_models()

    async def _run_with_models(self) -> RunSummary:
        async with inference_for_run(self.deps):
            return await self._locked_run()

    async def _locked_run(self) -> RunSummary:
        t0 = time.time()
        started_at = datetime.now(UTC).isoformat()
        resumed = self._check_same_run()
        state = RunState(self, t0)
        await state.load()
        manifest = ManifestWriter(
            self.deps,
            self.run_cfg,
            self.files,
            self.progress,
            t0=t0,
            started_at=started_at,
            resumed=resumed,
            extra=self.extra_manifest,
        )
        # From the start, so that a run killed before its first item is seen as interrupted.
        manifest.write()
        cfg = self.run_cfg
        async with open_checkpointer(self.files.checkpoints, commit_interval_s=0.2) as saver:
            graph = build_item_graph(self.deps, saver)
            durability: Durability = "sync" if cfg.checkpoint == "step" else "exit"
            run_item = functools.partial(
                self._run_item, graph, recursion_limit(cfg.max_attempts), durability
            )
            try:
                await self._drive(state, run_item, manifest)
            finally:
                unfinished = await state.stop()
        summary = state.summary(resumed, unfinished)
        manifest.write(summary, state.error)
        if state.error is not None:
            raise RunAborted(state.error)
        return summary

    async def _drive(self, state: RunState, run_item: ItemRun, manifest: ManifestWriter) -> None:
        """Keep the pool full until nothing may start and nothing is in flight, the wall time
        is up, or a fatal error stops new launches and the items in flight have ended."""
        state.serve_newest_first(False)  # a previous run in this loop may have left it on
        while True:
            state.order_calls()
            state.drop_unneeded_pending()
            state.fill(run_item)
            if not state.tasks:
                return
            finished = await state.wait()
            if not finished:
                return
            for fut in finished:
                if state.finish(fut):
                    manifest.write(live=True)
                    if self.on_progress:
                        self.on_progress(self.progress)
            await state.sweep_surplus()

    async def _run_item(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        limit: int,
        durability: Durability,
        task: Task,
    ) -> ItemRecord:
        """Run ``task`` through the item graph, from its checkpoint when it has one."""
        current_item.set(task.id)  # this task's context only
        call_rank.set(task.index)
        config: Any = {"configurable": {"thread_id": task.id}, "recursion_limit": limit}
        snapshot = await graph.aget_state(config)
        if snapshot.values and not snapshot.next and snapshot.values.get("status"):
            final = snapshot.values
        elif snapshot.values:
            final = await graph.ainvoke(None, config, durability=durability)
        else:
            state = initial_state(task, self.run_cfg.max_attempts, time.time())
            final = await graph.ainvoke(state, config, durability=durability)
        return build_record(final, self.deps)
