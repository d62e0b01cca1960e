"""The batch runner: fan items out over the item graph, a pool of them at a time (``pool_size``).

Guarantees, in order of importance:
- every started candidate ends in ``accepted.jsonl``, ``rejected.jsonl`` or ``surplus.jsonl``
  (nothing dropped); surplus items were stopped or set aside because the target was reached;
- exactly ``n`` accepted items, unless a budget (tokens, candidates) stops the run first;
- one writer per run directory (``tools.runlock``); the near-duplicate registry holds exactly
  the accepted items, so a resumed run decides as an uninterrupted one would;
- a killed run resumes: task ids are deterministic, each item's graph is checkpointed in
  SQLite, finished items are skipped and unfinished ones continue from their last step.

The pool is an asyncio worker pool rather than one LangGraph ``Send`` superstep, because a
superstep waits for its slowest item and cannot stop at an exact count; each item still runs
through the compiled LangGraph state machine with its own checkpoint thread.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from clinsynth.agents.deps import Deps
from clinsynth.graphs.generation import build_item_graph, initial_state, recursion_limit
from clinsynth.llm import LLMRequestError, UsageMeter, current_item
from clinsynth.runtime import aio
from clinsynth.runtime.checkpoint import open_checkpointer
from clinsynth.runtime.inference import inference_for_run
from clinsynth.runtime.limits import call_rank
from clinsynth.runtime.rundir import check_same_run
from clinsynth.runtime.runfiles import (
    JsonlLog,
    RunFiles,
    iter_jsonl,
    read_records,
    write_json_atomic,
)
from clinsynth.runtime.runlock import RunLock
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

StopReason = Literal[
    "target reached", "token budget", "cost budget", "wall time", "candidate limit", "aborted"
]

FATAL_ERRORS: tuple[type[BaseException], ...] = ()
"""Exception types that abort the run instead of rejecting one item (set by ``register_fatal``)."""


def launch_target(remaining: int, accept_rate: float) -> int:
    """Candidates to keep in flight for ``remaining`` more accepted items.

    Enough that, at the acceptance rate seen so far, the items in flight reach the target
    with ~98 % probability (normal approximation of the binomial). Launching exactly
    ``remaining`` makes the end of a run replace each rejected item one after the other; at
    an acceptance rate of 1 this is exactly ``remaining``, so a clean run spends nothing extra.
    """
    if remaining <= 0:
        return 0
    rate = min(max(accept_rate, 0.05), 1.0)
    return math.ceil((remaining + 2 * math.sqrt(remaining * (1 - rate))) / rate - 1e-9)


def pool_size(max_concurrency: int, request_cap: int | None) -> int:
    """Items to keep in flight.

    ``max_concurrency`` counts LLM requests. When every request of the run waits for one of
    that many slots in the HTTP client (``LLMRouter.request_cap``), the pool holds twice as
    many items, so that while some items are between calls (retrieval, critic, checkpoints)
    others keep every slot busy. Items started together answer together; then half of the
    slots idle while the loop works through that wave unless as many items again are queued
    for them. Otherwise (the in-process local model, uncapped models) the pool is
    ``max_concurrency``, as before.
    """
    if request_cap is None or request_cap > max_concurrency:
        return max_concurrency
    return 2 * max_concurrency


def register_fatal(*types: type[BaseException]) -> None:
    """Declare exception types (endpoint down, empty store) that must stop the whole run."""
    global FATAL_ERRORS
    FATAL_ERRORS = tuple(dict.fromkeys((*FATAL_ERRORS, *types)))


MANIFEST_EVERY_S = 1.0
"""Least seconds between two mid-run rewrites of ``manifest.json`` (the final one always lands)."""


class RunAborted(RuntimeError):
    """The run stopped on an error that would fail every item; rerun the command to resume."""


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


def build_record(final: dict[str, Any], deps: Deps) -> ItemRecord:
    """Turn an item's final graph state into its JSONL record; PHI is masked in the history's
    raw model output and items, and in a rejected item (an accepted one passed the check)."""
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
    attempts = [deps.recipe.redacted_attempt(a) for a in attempts]
    if status == "rejected" and item is not None:
        item = deps.recipe.redacted(item)
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
        self._manifest_at = -MANIFEST_EVERY_S

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

    def _started_tasks(self) -> list[Task]:
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
        cfg = self.run_cfg
        t0 = time.time()
        started_at = datetime.now(UTC).isoformat()
        resumed = self._check_same_run()
        files = self.files
        accepted = JsonlLog(files.accepted)
        rejected = JsonlLog(files.rejected)
        surplus = JsonlLog(files.surplus)
        logs = {"accepted": accepted, "rejected": rejected, "surplus": surplus}
        # Task ids are deterministic, so a lost "started" row only means the task is relaunched
        # under the same id (and resumed from its checkpoint): no fsync needed there.
        started = JsonlLog(files.started, durable=False)
        prior_usage = Usage()
        quota_accepted = self.quota_accepted
        quota_accepted.clear()
        earlier = read_records(files.accepted)
        texts = [(rec.id, self.deps.recipe.text_for_similarity(rec.item or {})) for rec in earlier]
        await self.deps.off_loop(self.deps.registry.add_many, texts)  # embeds: model work
        for rec in earlier:
            prior_usage = prior_usage + rec.provenance.usage
            key = self.quota_key(rec.task, rec.item)
            if key is not None:
                quota_accepted[key] += 1
        for rec in read_records(files.rejected) + read_records(files.surplus):
            prior_usage = prior_usage + rec.provenance.usage
        done = accepted.ids | rejected.ids | surplus.ids
        started_tasks = self._started_tasks()
        pending = [t for t in started_tasks if t.id not in done]
        next_index = started_tasks[-1].index + 1 if started_tasks else 0
        p = self.progress
        p.accepted, p.rejected, p.started = len(accepted), len(rejected), len(started)
        p.surplus = len(surplus)
        p.resumed_items = len(pending)
        p.usage = prior_usage
        base_usage = prior_usage
        # From the start, so that a run killed before its first item is seen as interrupted.
        self._write_manifest(started_at, t0, None, None, resumed)
        meter_start = self.meter.total() if self.meter else Usage()
        quota_in_flight: Counter[str] = Counter()
        # Recent graph outcomes (1 = accepted, surplus included) for launch_target: recent,
        # because rejections grow as accepted items crowd the near-duplicate check.
        pool = pool_size(cfg.max_concurrency, self.deps.llm.request_cap())
        outcomes: deque[int] = deque(maxlen=max(2 * pool, 16))
        error: str | None = None
        stopped_by: StopReason | None = None

        def spent() -> Usage:
            # The meter also counts calls of items still in flight; records only finished ones.
            if self.meter is None:
                return base_usage
            now = self.meter.total()
            return Usage(
                input_tokens=prior_usage.input_tokens + now.input_tokens - meter_start.input_tokens,
                output_tokens=prior_usage.output_tokens
                + now.output_tokens
                - meter_start.output_tokens,
                calls=prior_usage.calls + now.calls - meter_start.calls,
            )

        def budget_spent() -> StopReason | None:
            """The budget that forbids new items now, if any."""
            if cfg.wall_time_s is not None and time.time() - t0 >= cfg.wall_time_s:
                return "wall time"
            if cfg.token_budget is None and cfg.cost_budget is None:
                return None
            usage = spent()
            if cfg.token_budget is not None and usage.total_tokens >= cfg.token_budget:
                return "token budget"
            if cfg.cost_budget is not None and (
                cfg.cost(usage.input_tokens, usage.output_tokens) >= cfg.cost_budget
            ):
                return "cost budget"
            return None

        def accept_rate() -> float:
            return (sum(outcomes) + 1) / (len(outcomes) + 1)

        def next_quota_key() -> str | None:
            """The quota that most needs another item (None: all are full or in flight)."""
            needs = {
                key: launch_target(wanted - quota_accepted[key], accept_rate())
                - quota_in_flight[key]
                for key, wanted in cfg.quotas.items()
            }
            key = max(needs, key=lambda k: needs[k])
            return key if needs[key] > 0 else None

        def new_task() -> Task | None:
            """The next task to start, or None when the target, a quota or a budget forbids."""
            nonlocal stopped_by, next_index
            if error is not None or p.in_flight >= launch_target(cfg.n - p.accepted, accept_rate()):
                return None
            if p.started >= cfg.candidate_limit:
                return None
            reason = budget_spent()
            if reason is not None:
                stopped_by = stopped_by or reason
                return None
            if cfg.quotas:
                key = next_quota_key()
                if key is None:
                    return None
                task = self.task_for_quota(next_index, key)
            else:
                task = self.task_for(next_index)
            next_index += 1
            started.append(
                {"id": task.id, "index": task.index, "task": task.model_dump(mode="json")}
            )
            p.started = len(started)
            return task

        def as_surplus_if_needed(record: ItemRecord) -> ItemRecord:
            """The record to log: an accepted item that must not count becomes surplus."""
            why = surplus_reason(record) if record.status == "accepted" else None
            return (
                record.model_copy(update={"status": "surplus", "reasons": [why]}) if why else record
            )

        def log_record(record: ItemRecord) -> None:
            """Append a finished item to its status's log; only accepted ones stay registered
            as near-duplicate neighbours (the graph registers every item it accepts)."""
            nonlocal base_usage
            if record.status != "accepted":
                self.deps.registry.discard(record.id)
            if logs[record.status].append(record):
                base_usage = base_usage + record.provenance.usage
                if record.status == "accepted":
                    final_key = self.quota_key(record.task, record.item)
                    if final_key is not None:
                        quota_accepted[final_key] += 1
            p.accepted, p.rejected, p.surplus = len(accepted), len(rejected), len(surplus)
            p.usage = base_usage

        def surplus_reason(record: ItemRecord) -> str | None:
            """Why an accepted item must not count (the target or its quota is already met)."""
            if p.accepted >= cfg.n:
                return "surplus: the target was reached first"
            if cfg.quotas:
                key = self.quota_key(record.task, record.item)
                if key not in cfg.quotas:
                    return f"surplus: no quota for {cfg.quota_by} {key!r}"
                if quota_accepted[key] >= cfg.quotas[key]:
                    return f"surplus: the quota for {cfg.quota_by} {key!r} was met first"
            return None

        def order_calls(newest_first: bool) -> None:
            for limits in self.deps.llm.call_limits():
                if limits is not None:
                    limits.serve_newest_first(newest_first)

        async with open_checkpointer(files.checkpoints, commit_interval_s=0.2) as saver:
            graph = build_item_graph(self.deps, saver)
            limit = recursion_limit(cfg.max_attempts)

            durability: Any = "sync" if cfg.checkpoint == "step" else "exit"

            async def run_item(task: Task) -> ItemRecord:
                current_item.set(task.id)  # this task's context only
                call_rank.set(task.index)
                config: Any = {"configurable": {"thread_id": task.id}, "recursion_limit": limit}
                snapshot = await graph.aget_state(config)
                if snapshot.values and not snapshot.next and snapshot.values.get("status"):
                    final = snapshot.values
                elif snapshot.values:
                    final = await graph.ainvoke(None, config, durability=durability)
                else:
                    state = initial_state(task, cfg.max_attempts, time.time())
                    final = await graph.ainvoke(state, config, durability=durability)
                return build_record(final, self.deps)

            tasks: dict[asyncio.Task[ItemRecord], Task] = {}

            def launch(task: Task) -> None:
                tasks[asyncio.create_task(run_item(task))] = task
                p.in_flight = len(tasks)
                key = self.quota_key(task)
                if key is not None:
                    quota_in_flight[key] += 1

            newest_first = False
            order_calls(False)  # a previous run in this loop may have left it on
            try:
                while True:
                    # The end game: nothing will replace finished items, so queued calls go
                    # newest item first (see tools.limits.Slots) and the last calls end together.
                    end_game = stopped_by is not None or (
                        launch_target(cfg.n - p.accepted, accept_rate()) < pool
                    )
                    if end_game != newest_first:
                        newest_first = end_game
                        order_calls(end_game)
                    if p.accepted >= cfg.n and pending:
                        # Resumed with a smaller n: items left from before are not needed.
                        for left in pending:
                            log_record(self._surplus_record(left, "not resumed"))
                        pending.clear()
                    while len(tasks) < pool and error is None:
                        if pending:
                            launch(pending.pop(0))
                        elif (task := new_task()) is not None:
                            launch(task)
                        else:
                            break
                    if not tasks:
                        break
                    timeout = None
                    if cfg.wall_time_s is not None:
                        timeout = max(cfg.wall_time_s - (time.time() - t0), 0)
                    finished, _ = await asyncio.wait(
                        tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    if not finished:  # wall time is up: in-flight items resume on rerun
                        stopped_by = stopped_by or "wall time"
                        break
                    for fut in finished:
                        task = tasks.pop(fut)
                        p.in_flight = len(tasks)
                        key = self.quota_key(task)
                        if key is not None:
                            quota_in_flight[key] -= 1
                        exc = fut.exception()
                        if exc is not None and isinstance(exc, FATAL_ERRORS):
                            error = error or str(exc)
                            continue
                        usage = self.meter.pop_item(task.id) if self.meter else Usage()
                        record = (
                            self._error_record(task, exc, usage)
                            if exc is not None
                            else fut.result()
                        )
                        if exc is None:
                            outcomes.append(int(record.status == "accepted"))
                        record = as_surplus_if_needed(record)
                        log_record(record)
                        p.attempts += record.provenance.attempts
                        p.elapsed_s = time.time() - t0
                        self._write_manifest(started_at, t0, None, None, resumed, live=True)
                        if self.on_progress:
                            self.on_progress(p)
                    if p.accepted >= cfg.n and tasks:
                        # Extra candidates launched against rejections are not needed now.
                        for fut, task in list(tasks.items()):
                            usage = self.meter.pop_item(task.id) if self.meter else Usage()
                            if not fut.done():
                                fut.cancel()
                                record = self._surplus_record(task, "cancelled in flight")
                                record.provenance.usage = usage  # the calls made before the cancel
                            elif (exc := fut.exception()) is not None:
                                record = self._error_record(task, exc, usage)
                            else:  # finished meanwhile: keep what it made
                                record = as_surplus_if_needed(fut.result())
                            log_record(record)
                        await asyncio.gather(*tasks, return_exceptions=True)
                        tasks.clear()
                        p.in_flight = 0
            finally:
                unfinished = len(tasks)
                for fut in tasks:
                    fut.cancel()
                if tasks:
                    await asyncio.gather(*tasks, return_exceptions=True)
                p.in_flight = 0
                for log in (accepted, rejected, surplus, started):
                    log.close()

        stop_reason: StopReason
        if error is not None:
            stop_reason = "aborted"
        elif p.accepted >= cfg.n:
            stop_reason = "target reached"
        else:
            stop_reason = stopped_by or budget_spent() or "candidate limit"
        usage = spent()
        cost = cfg.cost(usage.input_tokens, usage.output_tokens)
        summary = RunSummary(
            out_dir=str(files.dir),
            accepted=p.accepted,
            rejected=p.rejected,
            candidates=p.started,
            surplus=p.surplus,
            unfinished=unfinished,
            stop_reason=stop_reason,
            detail=self._detail(stop_reason, usage, cost, unfinished, error),
            usage=base_usage,
            cost=round(cost, 6) if cfg.price_per_1k_input or cfg.price_per_1k_output else None,
            quotas=dict(quota_accepted) if cfg.quotas else {},
            wall_s=round(time.time() - t0, 3),
            resumed=resumed,
            error=error,
        )
        self._write_manifest(started_at, t0, summary, error, resumed)
        if error is not None:
            raise RunAborted(error)
        return summary

    def _detail(
        self, reason: StopReason, usage: Usage, cost: float, unfinished: int, error: str | None
    ) -> str:
        """One sentence on why the run stopped."""
        cfg = self.run_cfg
        p = self.progress
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

    def _error_record(self, task: Task, exc: BaseException, usage: Usage) -> ItemRecord:
        """A rejected record for an item whose graph raised (kept, never dropped), charged the
        ``usage`` of the calls it made before."""
        reason = str(exc) if isinstance(exc, LLMRequestError) else f"{type(exc).__name__}: {exc}"
        record = self._unfinished_record(task, f"error: {reason}")
        record.provenance.usage = usage
        return record

    def _surplus_record(self, task: Task, how: str) -> ItemRecord:
        """A surplus record for a candidate stopped (``how``) once the target was met."""
        return self._unfinished_record(
            task, f"surplus: {how}, the target was reached first", status="surplus"
        )

    def _unfinished_record(
        self, task: Task, reason: str, status: Literal["rejected", "surplus"] = "rejected"
    ) -> ItemRecord:
        provenance = Provenance(
            recipe=self.deps.recipe.name,
            model=self.deps.llm.describe().get("generator", "unknown"),
            prompt_version=self.deps.recipe.prompt_version,
            attempts=0,
        )
        return ItemRecord(
            id=task.id,
            status=status,
            task=task,
            item=None,
            provenance=provenance,
            reasons=[reason],
        )

    def _write_manifest(
        self,
        started_at: str,
        t0: float,
        summary: RunSummary | None,
        error: str | None,
        resumed: bool,
        *,
        live: bool = False,
    ) -> None:
        """Write ``manifest.json``; ``live`` (mid-run) updates are skipped within a second of
        the last one, as rewriting it per item costs the event loop more than the item's logs."""
        now = time.monotonic()
        if live and now - self._manifest_at < MANIFEST_EVERY_S:
            return
        self._manifest_at = now
        p = self.progress
        manifest = {
            "run": self.run_cfg.model_dump(mode="json"),
            "recipe": {
                "name": self.deps.recipe.name,
                "prompt_version": self.deps.recipe.prompt_version,
            },
            "models": self.deps.llm.describe(),
            "endpoints": {role: m.endpoint for role, m in self.deps.llm.models.items()},
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
