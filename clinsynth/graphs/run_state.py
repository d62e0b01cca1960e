"""The state of one batch run and the decisions taken on it.

:class:`RunState` holds the run's logs, counters, quotas, items in flight and usage; its
methods decide what to launch next, what a finished item counts as, what to do with items
once the target is met, and why the run stopped. The runner (``graphs.batch``) drives it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from clinsynth.graphs.manifest import RunSummary, StopReason, stop_detail
from clinsynth.graphs.records import error_record, surplus_record
from clinsynth.runtime.passages import logged_row
from clinsynth.runtime.runfiles import JsonlLog, read_records
from clinsynth.schemas import ItemRecord, Task, Usage

if TYPE_CHECKING:
    from clinsynth.graphs.batch import BatchRunner

ItemRun = Callable[[Task], Coroutine[Any, Any, ItemRecord]]
"""Runs one task through the item graph to its record."""


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


class RunState:
    """One run of a :class:`~clinsynth.graphs.batch.BatchRunner`: logs, counters, quotas,
    items in flight and usage. Opens the run's logs; :meth:`stop` closes them."""

    def __init__(self, runner: BatchRunner, t0: float) -> None:
        self.runner = runner
        self.deps = runner.deps
        self.cfg = runner.run_cfg
        self.meter = runner.meter
        self.progress = runner.progress
        self.t0 = t0
        files = runner.files
        self.accepted = JsonlLog(files.accepted)
        self.rejected = JsonlLog(files.rejected)
        self.surplus = JsonlLog(files.surplus)
        self.logs = {"accepted": self.accepted, "rejected": self.rejected, "surplus": self.surplus}
        self.passages = JsonlLog(files.passages)
        """Each source chunk once per run; item rows keep only its id (written before them)."""
        # Task ids are deterministic, so a lost "started" row only means the task is relaunched
        # under the same id (and resumed from its checkpoint): no fsync needed there.
        self.started = JsonlLog(files.started, durable=False)
        self.quota_accepted = runner.quota_accepted
        self.quota_accepted.clear()
        self.quota_in_flight: Counter[str] = Counter()
        self.pool = pool_size(self.cfg.max_concurrency, self.deps.llm.request_cap())
        # Recent graph outcomes (1 = accepted, surplus included) for launch_target: recent,
        # because rejections grow as accepted items crowd the near-duplicate check.
        self.outcomes: deque[int] = deque(maxlen=max(2 * self.pool, 16))
        self.tasks: dict[asyncio.Task[ItemRecord], Task] = {}
        self.pending: list[Task] = []
        """Tasks an earlier run started and did not finish (resumed first)."""
        self.next_index = 0
        self.prior_usage = Usage()
        """Usage of the items logged before this run."""
        self.logged_usage = Usage()
        """Usage of every logged item, earlier runs included."""
        self.meter_start = Usage()
        self.error: str | None = None
        """The fatal error that aborts the run, once one was raised."""
        self.stopped_by: StopReason | None = None
        self.newest_first = False

    async def load(self) -> None:
        """Take up what earlier runs left in the directory: accepted items become
        near-duplicate neighbours and count against quotas; unfinished tasks are pending."""
        runner, files, p = self.runner, self.runner.files, self.progress
        earlier = read_records(files.accepted)
        texts = [(rec.id, self.deps.recipe.text_for_similarity(rec.item or {})) for rec in earlier]
        await self.deps.off_loop(self.deps.registry.add_many, texts)  # embeds: model work
        prior = Usage()
        for rec in earlier:
            prior = prior + rec.provenance.usage
            key = runner.quota_key(rec.task, rec.item)
            if key is not None:
                self.quota_accepted[key] += 1
        for rec in read_records(files.rejected) + read_records(files.surplus):
            prior = prior + rec.provenance.usage
        done = self.accepted.ids | self.rejected.ids | self.surplus.ids
        started_tasks = runner.started_tasks()
        self.pending = [t for t in started_tasks if t.id not in done]
        self.next_index = started_tasks[-1].index + 1 if started_tasks else 0
        p.accepted, p.rejected, p.started = (
            len(self.accepted),
            len(self.rejected),
            len(self.started),
        )
        p.surplus = len(self.surplus)
        p.resumed_items = len(self.pending)
        p.usage = self.prior_usage = self.logged_usage = prior
        self.meter_start = self.meter.total() if self.meter else Usage()

    def spent(self) -> Usage:
        """Usage so far: the meter also counts calls of items still in flight, the records
        only finished ones."""
        if self.meter is None:
            return self.logged_usage
        now, start, prior = self.meter.total(), self.meter_start, self.prior_usage
        return Usage(
            input_tokens=prior.input_tokens + now.input_tokens - start.input_tokens,
            output_tokens=prior.output_tokens + now.output_tokens - start.output_tokens,
            calls=prior.calls + now.calls - start.calls,
        )

    def budget_spent(self) -> StopReason | None:
        """The budget that forbids new items now, if any."""
        cfg = self.cfg
        if cfg.wall_time_s is not None and time.time() - self.t0 >= cfg.wall_time_s:
            return "wall time"
        if cfg.token_budget is None and cfg.cost_budget is None:
            return None
        usage = self.spent()
        if cfg.token_budget is not None and usage.total_tokens >= cfg.token_budget:
            return "token budget"
        if cfg.cost_budget is not None and (
            cfg.cost(usage.input_tokens, usage.output_tokens) >= cfg.cost_budget
        ):
            return "cost budget"
        return None

    def accept_rate(self) -> float:
        """Share of recent graph outcomes that were accepted (smoothed)."""
        return (sum(self.outcomes) + 1) / (len(self.outcomes) + 1)

    def next_quota_key(self) -> str | None:
        """The quota that most needs another item (None: all are full or in flight)."""
        rate = self.accept_rate()
        needs = {
            key: launch_target(wanted - self.quota_accepted[key], rate) - self.quota_in_flight[key]
            for key, wanted in self.cfg.quotas.items()
        }
        key = max(needs, key=lambda k: needs[k])
        return key if needs[key] > 0 else None

    def new_task(self) -> Task | None:
        """The next task to start, or None when the target, a quota or a budget forbids."""
        cfg, p = self.cfg, self.progress
        if self.error is not None:
            return None
        if p.in_flight >= launch_target(cfg.n - p.accepted, self.accept_rate()):
            return None
        if p.started >= cfg.candidate_limit:
            return None
        reason = self.budget_spent()
        if reason is not None:
            self.stopped_by = self.stopped_by or reason
            return None
        if cfg.quotas:
            key = self.next_quota_key()
            if key is None:
                return None
            task = self.runner.task_for_quota(self.next_index, key)
        else:
            task = self.runner.task_for(self.next_index)
        self.next_index += 1
        self.started.append(
            {"id": task.id, "index": task.index, "task": task.model_dump(mode="json")}
        )
        p.started = len(self.started)
        return task

    def surplus_reason(self, record: ItemRecord) -> str | None:
        """Why an accepted item must not count (the target or its quota is already met)."""
        cfg = self.cfg
        if self.progress.accepted >= cfg.n:
            return "surplus: the target was reached first"
        if cfg.quotas:
            key = self.runner.quota_key(record.task, record.item)
            if key not in cfg.quotas:
                return f"surplus: no quota for {cfg.quota_by} {key!r}"
            if self.quota_accepted[key] >= cfg.quotas[key]:
                return f"surplus: the quota for {cfg.quota_by} {key!r} was met first"
        return None

    def as_surplus_if_needed(self, record: ItemRecord) -> ItemRecord:
        """The record to log: an accepted item that must not count becomes surplus."""
        why = self.surplus_reason(record) if record.status == "accepted" else None
        return record.model_copy(update={"status": "surplus", "reasons": [why]}) if why else record

    def log_record(self, record: ItemRecord) -> None:
        """Append a finished item to its status's log; only accepted ones stay registered
        as near-duplicate neighbours (the graph registers every item it accepts)."""
        if record.status != "accepted":
            self.deps.registry.discard(record.id)
        if self.logs[record.status].append(logged_row(record, self.passages)):
            self.logged_usage = self.logged_usage + record.provenance.usage
            if record.status == "accepted":
                key = self.runner.quota_key(record.task, record.item)
                if key is not None:
                    self.quota_accepted[key] += 1
        p = self.progress
        p.accepted, p.rejected, p.surplus = (
            len(self.accepted),
            len(self.rejected),
            len(self.surplus),
        )
        p.usage = self.logged_usage

    def serve_newest_first(self, on: bool) -> None:
        """Set the order in which every model's queued calls are served."""
        self.newest_first = on
        for limits in self.deps.llm.call_limits():
            if limits is not None:
                limits.serve_newest_first(on)

    def order_calls(self) -> None:
        """In the end game nothing will replace finished items, so queued calls go newest item
        first (see tools.limits.Slots) and the last calls end together."""
        end_game = self.stopped_by is not None or (
            launch_target(self.cfg.n - self.progress.accepted, self.accept_rate()) < self.pool
        )
        if end_game != self.newest_first:
            self.serve_newest_first(end_game)

    def drop_unneeded_pending(self) -> None:
        """Resumed with a smaller n: items left from before are not needed, log them surplus."""
        if self.progress.accepted >= self.cfg.n and self.pending:
            for left in self.pending:
                self.log_record(surplus_record(self.deps, left, "not resumed"))
            self.pending.clear()

    def launch(self, task: Task, run_item: ItemRun) -> None:
        """Start ``task`` through the item graph."""
        self.tasks[asyncio.create_task(run_item(task))] = task
        self.progress.in_flight = len(self.tasks)
        key = self.runner.quota_key(task)
        if key is not None:
            self.quota_in_flight[key] += 1

    def fill(self, run_item: ItemRun) -> None:
        """Launch pending tasks, then new ones, until the pool is full or nothing may start."""
        while len(self.tasks) < self.pool and self.error is None:
            if self.pending:
                self.launch(self.pending.pop(0), run_item)
            elif (task := self.new_task()) is not None:
                self.launch(task, run_item)
            else:
                break

    async def wait(self) -> set[asyncio.Task[ItemRecord]]:
        """The items that finish next; none when the wall time is up (the run stops, and the
        items in flight resume on rerun)."""
        timeout = None
        if self.cfg.wall_time_s is not None:
            timeout = max(self.cfg.wall_time_s - (time.time() - self.t0), 0)
        finished, _ = await asyncio.wait(
            self.tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not finished:
            self.stopped_by = self.stopped_by or "wall time"
        return finished

    def finish(self, fut: asyncio.Task[ItemRecord]) -> bool:
        """Log the record of a finished item; False when it raised a fatal error (``Deps.fatal``)
        instead, which aborts the run."""
        task = self.tasks.pop(fut)
        p = self.progress
        p.in_flight = len(self.tasks)
        key = self.runner.quota_key(task)
        if key is not None:
            self.quota_in_flight[key] -= 1
        exc = fut.exception()
        if exc is not None and isinstance(exc, self.deps.fatal):
            self.error = self.error or str(exc)
            return False
        usage = self.meter.pop_item(task.id) if self.meter else Usage()
        record = error_record(self.deps, task, exc, usage) if exc is not None else fut.result()
        if exc is None:
            self.outcomes.append(int(record.status == "accepted"))
        record = self.as_surplus_if_needed(record)
        self.log_record(record)
        p.attempts += record.provenance.attempts
        p.elapsed_s = time.time() - self.t0
        return True

    async def sweep_surplus(self) -> None:
        """Once the target is met, log the items still in flight (launched against rejections)
        as surplus: cancelled ones with the calls they made, finished ones with what they made."""
        if self.progress.accepted < self.cfg.n or not self.tasks:
            return
        for fut, task in list(self.tasks.items()):
            usage = self.meter.pop_item(task.id) if self.meter else Usage()
            if not fut.done():
                fut.cancel()
                record = surplus_record(self.deps, task, "cancelled in flight")
                record.provenance.usage = usage  # the calls made before the cancel
            elif (exc := fut.exception()) is not None:
                record = error_record(self.deps, task, exc, usage)
            else:  # finished meanwhile: keep what it made
                record = self.as_surplus_if_needed(fut.result())
            self.log_record(record)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        self.progress.in_flight = 0

    async def stop(self) -> int:
        """Cancel the items still in flight (a rerun resumes them), close the logs, and return
        how many items were left unfinished."""
        unfinished = len(self.tasks)
        for fut in self.tasks:
            fut.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.progress.in_flight = 0
        for log in (self.passages, self.accepted, self.rejected, self.surplus, self.started):
            log.close()
        return unfinished

    def stop_reason(self) -> StopReason:
        """Why the run ended: an abort, the target, or the budget or limit that stopped it."""
        if self.error is not None:
            return "aborted"
        if self.progress.accepted >= self.cfg.n:
            return "target reached"
        return self.stopped_by or self.budget_spent() or "candidate limit"

    def summary(self, resumed: bool, unfinished: int) -> RunSummary:
        """What the run produced."""
        cfg, p = self.cfg, self.progress
        reason = self.stop_reason()
        usage = self.spent()
        cost = cfg.cost(usage.input_tokens, usage.output_tokens)
        return RunSummary(
            out_dir=str(self.runner.files.dir),
            accepted=p.accepted,
            rejected=p.rejected,
            candidates=p.started,
            surplus=p.surplus,
            unfinished=unfinished,
            stop_reason=reason,
            detail=stop_detail(reason, cfg, p, usage, cost, unfinished, self.error),
            usage=self.logged_usage,
            cost=round(cost, 6) if cfg.price_per_1k_input or cfg.price_per_1k_output else None,
            quotas=dict(self.quota_accepted) if cfg.quotas else {},
            wall_s=round(time.time() - self.t0, 3),
            resumed=resumed,
            error=self.error,
        )
