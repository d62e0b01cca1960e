"""One worker of a distributed run: the item graph and the batch runner's item path on the
items the coordinator leases it, writing its own part of the run directory.

Runs in a Ray actor's process (``scale.driver``) but knows nothing of Ray beyond awaiting the
coordinator's methods: ``coordinator`` is any object whose ``lease`` / ``claim`` / ``written``
have a ``remote`` method returning an awaitable (a Ray actor handle).
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.types import Durability

from clinsynth.config import EndpointSettings, RunConfig, Settings
from clinsynth.graphs.batch import BatchRunner, RunAborted
from clinsynth.graphs.factory import build_deps
from clinsynth.graphs.generation import build_item_graph, recursion_limit
from clinsynth.graphs.records import error_record, surplus_record
from clinsynth.graphs.run_state import pool_size
from clinsynth.runtime import aio
from clinsynth.runtime.checkpoint import open_checkpointer
from clinsynth.runtime.inference import inference_for_run
from clinsynth.runtime.passages import logged_row
from clinsynth.runtime.runfiles import JsonlLog, RunFiles, read_json, write_json_atomic
from clinsynth.runtime.runlock import RunLock
from clinsynth.scale.coordinator import Lease, Refill, Verdict
from clinsynth.scale.parts import part_dir
from clinsynth.schemas import ItemRecord, Task

WAIT_S = 0.05
"""How long a worker told to wait lets its items run before it asks again."""


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to build its run (picklable: sent to the worker's process)."""

    worker: int
    out_dir: Path
    run: RunConfig
    settings: Settings
    endpoints: dict[str, EndpointSettings]


class Worker:
    """Runs leased items until the coordinator says stop; :meth:`run` returns its stats."""

    def __init__(self, spec: WorkerSpec, coordinator: Any) -> None:
        self.spec = spec
        self.coord = coordinator
        self.dir = part_dir(spec.out_dir, spec.worker)
        self.files = RunFiles(self.dir)

    def run(self) -> dict[str, Any]:
        """Run in this process's own event loop (the CLI's, uvloop where installed)."""
        return aio.run(self.arun())

    async def arun(self) -> dict[str, Any]:
        t0, cpu0 = time.time(), time.process_time()
        spec = self.spec
        self.dir.mkdir(parents=True, exist_ok=True)
        deps, meter = build_deps(
            spec.settings,
            spec.run,
            endpoints=spec.endpoints,
            cache_path=self.dir / "reasoning_cache.sqlite",
        )
        self.deps, self.meter = deps, meter
        self.runner = BatchRunner(deps, self.dir, meter=meter)
        self.logs = {s: JsonlLog(self.dir / f"{s}.jsonl") for s in ("accepted", "rejected")}
        self.logs["surplus"] = JsonlLog(self.files.surplus)
        self.started = JsonlLog(self.files.started, durable=False)
        self.passages = JsonlLog(self.files.passages)
        """Each passage once per part, as a single-process run stores them per run."""
        self.counts = {"accepted": 0, "rejected": 0, "surplus": 0, "started": 0}
        self.loop_s = (0.0, 0.0)
        """Wall and CPU seconds of the item loop alone (no start-up)."""
        self.seen = 0
        """Changes to the accepted set taken from the coordinator so far."""
        self.written: list[int] = []
        """Items logged since the coordinator was last told."""
        try:
            with RunLock(self.dir, wait=True):  # a killed run's worker may linger a moment
                async with (
                    inference_for_run(deps),
                    open_checkpointer(self.files.checkpoints, commit_interval_s=0.2) as s,
                ):
                    graph = build_item_graph(deps, s)
                    durability: Durability = "sync" if spec.run.checkpoint == "step" else "exit"
                    run_item = functools.partial(
                        self.runner._run_item,
                        graph,
                        recursion_limit(spec.run.max_attempts),
                        durability,
                    )
                    loop0, loop_cpu0 = time.time(), time.process_time()
                    await self._loop(run_item)
                    self.loop_s = (time.time() - loop0, time.process_time() - loop_cpu0)
                    if self.written:
                        await self.coord.written.remote(self.spec.worker, self.written)
        finally:
            for log in (*self.logs.values(), self.started, self.passages):
                log.close()
        return self._save_stats(time.time() - t0, time.process_time() - cpu0)

    def _take_accepted(self, refill: Refill) -> None:
        """Every worker's accepted items become this worker's near-duplicate neighbours, so
        its critic revises a candidate too close to one of them (the coordinator's check at
        claim stays the one that counts)."""
        registry = self.deps.registry
        for item_id, vector in refill.accepted:
            if vector is None:
                registry.discard(item_id)
            else:
                registry.add_vector(item_id, vector)
        self.seen = refill.seen

    def _task(self, lease: Lease) -> Task:
        if lease.task is not None and "task" in lease.task:
            return Task.model_validate(lease.task["task"])
        if lease.quota is not None:
            return self.runner.task_for_quota(lease.index, lease.quota)
        return self.runner.task_for(lease.index)

    async def _loop(self, run_item: Any) -> None:
        pool = pool_size(self.spec.run.max_concurrency, self.deps.llm.request_cap())
        tasks: dict[asyncio.Task[ItemRecord], Task] = {}
        stopping = target = False
        while True:
            told_to_wait = False
            if not stopping and len(tasks) < pool:
                written, self.written = self.written, []
                refill: Refill = await self.coord.refill.remote(
                    self.spec.worker, pool - len(tasks), written, self.seen
                )
                self._take_accepted(refill)
                for lease in refill.leases:
                    if lease.kind == "stop":
                        stopping, target = True, lease.target_reached
                    elif lease.kind == "wait":
                        told_to_wait = True
                    else:
                        task = self._task(lease)
                        row = {"id": task.id, "index": task.index, "quota_key": lease.quota}
                        self.started.append(row | {"task": task.model_dump(mode="json")})
                        self.counts["started"] += 1
                        tasks[asyncio.create_task(run_item(task))] = task
            if target or (stopping and not tasks):
                await self._sweep(tasks)
                return
            if not tasks:
                await asyncio.sleep(WAIT_S)
                continue
            finished, _ = await asyncio.wait(
                tasks,
                timeout=WAIT_S if told_to_wait else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            records = [self._record(fut, tasks.pop(fut)) for fut in finished]
            target = await self._log(records) or target
            if target:
                await self._sweep(tasks)
                return

    def _record(self, fut: asyncio.Task[ItemRecord], task: Task) -> ItemRecord:
        """A finished item's record (an error's record when its graph raised); an error that
        fails every item aborts the worker instead."""
        exc = fut.exception()
        if exc is not None and isinstance(exc, self.deps.fatal):
            raise RunAborted(str(exc)) from exc
        usage = self.meter.pop_item(task.id)
        return error_record(self.deps, task, exc, usage) if exc is not None else fut.result()

    async def _claim(self, record: ItemRecord) -> tuple[Any, ...]:
        """The arguments of ``Coordinator.claim`` for ``record``."""
        task, key, vector = record.task, None, None
        if record.status == "accepted":
            key = self.runner.quota_key(task, record.item)
            text = self.deps.recipe.text_for_similarity(record.item or {})
            vector = self.deps.registry.cached_embedding(text)
            if vector is None:
                vector = await self.deps.off_loop(self.deps.registry.embed_one, text)
        tokens = record.provenance.usage.total_tokens
        return (record.id, task.index, record.status, key, vector, tokens)

    async def _log(self, records: list[ItemRecord]) -> bool:
        """Claim the records at the coordinator (one round trip for all), log each as it was
        judged; True when the target is reached."""
        if not records:
            return False
        claims = [await self._claim(r) for r in records]
        verdicts: list[Verdict] = await self.coord.claim_many.remote(self.spec.worker, claims)
        for record, verdict in zip(records, verdicts, strict=True):
            if verdict.status != record.status:
                update = {"status": verdict.status, "reasons": [verdict.reason]}
                record = record.model_copy(update=update)
            if record.status != "accepted":
                self.deps.registry.discard(record.id)
            if self.logs[record.status].append(logged_row(record, self.passages)):
                self.counts[record.status] += 1
            self.written.append(record.task.index)  # reported with the next lease call
        return any(v.target_reached for v in verdicts)

    async def _sweep(self, tasks: dict[asyncio.Task[ItemRecord], Task]) -> None:
        """The target is reached: items still in flight are cancelled and logged as surplus."""
        for fut in tasks:
            fut.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        records = []
        for fut, task in tasks.items():
            if not fut.cancelled() and fut.exception() is None:
                records.append(fut.result())
                continue
            usage = self.meter.pop_item(task.id)
            record = surplus_record(self.deps, task, "cancelled in flight")
            record.provenance.usage = usage
            records.append(record)
        await self._log(records)

    def _save_stats(self, wall_s: float, cpu_s: float) -> dict[str, Any]:
        """This invocation's counts and timings, added to the part's ``worker.json``."""
        path = self.dir / "worker.json"
        before = read_json(path) if path.exists() else {}
        stats = {
            "invocations": int(before.get("invocations", 0)) + 1,
            "wall_s": round(float(before.get("wall_s", 0.0)) + wall_s, 3),
            "cpu_s": round(float(before.get("cpu_s", 0.0)) + cpu_s, 3),
            "last": {
                **self.counts,
                "wall_s": round(wall_s, 3),
                "cpu_s": round(cpu_s, 3),
                "loop_wall_s": round(self.loop_s[0], 3),
                "loop_cpu_s": round(self.loop_s[1], 3),
            },
        }
        write_json_atomic(path, stats)
        return stats
