"""The driver of a distributed run: Ray, the coordinator actor, K worker actors, the merge.

``run_distributed`` starts (or joins, with ``address``) a Ray instance, puts a
:class:`~clinsynth.scale.coordinator.Coordinator` in an actor and K
:class:`~clinsynth.scale.worker.Worker` s in actors of one CPU each, replaces a worker that
dies (at most ``MAX_REPLACEMENTS`` times per worker id), then merges the parts into the run's
usual files and manifest. Every worker must see the run directory at the same path (one
machine, or a shared filesystem on a cluster) and reach the store and the endpoints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from clinsynth.agents.deps import Deps
from clinsynth.generate_options import ResolvedRun
from clinsynth.graphs.batch import BatchRunner, RunAborted
from clinsynth.graphs.manifest import ManifestWriter, Progress, RunSummary, StopReason, stop_detail
from clinsynth.runtime.rundir import check_same_run
from clinsynth.runtime.runfiles import RunFiles
from clinsynth.scale.coordinator import Coordinator, PriorState
from clinsynth.scale.parts import Part, merge_parts, part_dir, read_part, read_parts, write_merged
from clinsynth.scale.worker import Worker, WorkerSpec
from clinsynth.schemas import Usage

MAX_REPLACEMENTS = 3
"""Times a worker id is restarted after its process died, per invocation."""
POLL_S = 0.25
_ENV_PREFIXES = ("CLINSYNTH_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "ANONYMIZED_TELEMETRY")


class RayMissing(RuntimeError):
    """``--workers`` without the ``scale`` extra."""


def import_ray() -> Any:
    """The ``ray`` module, or :class:`RayMissing` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayMissing(
            "--workers and --ray-address need Ray: pip install 'clinsynth[scale]'"
        ) from exc
    return ray


class RayUnreachable(RuntimeError):
    """``--ray-address`` names a cluster that does not answer."""


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse, within ``timeout_s``, a ``HOST:PORT`` (or ``ray://HOST:PORT``) address where
    nothing listens: ``ray.init`` would wait minutes for it. ``auto`` and ``local`` are left
    to Ray, which answers at once when no cluster runs here."""
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout_s):
            pass
    except OSError as exc:
        raise RayUnreachable(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one there "
            "with 'ray start --head', or leave out --ray-address to run on this machine"
        ) from exc


def prior_state(parts: list[Part], runner: BatchRunner, deps: Deps) -> PriorState:
    """What the parts hold, for the coordinator: accepted items (with their near-duplicate
    embeddings), how far indices went, and each worker's unfinished items."""
    seen: dict[str, Any] = {}
    for part in parts:
        for rec in part.records["accepted"]:
            seen.setdefault(rec.id, rec)
    accepted = [(r.id, runner.quota_key(r.task, r.item)) for r in seen.values()]
    texts = [deps.recipe.text_for_similarity(r.item or {}) for r in seen.values()]
    vectors = deps.registry.embedder.embed(texts) if texts else None
    logged = {i for part in parts for i in part.logged_ids}
    started = {row["id"]: int(row["index"]) for part in parts for row in part.started.values()}
    pending: dict[int, list[dict[str, Any]]] = {}
    queued: set[str] = set()
    for part in parts:
        for row in part.unfinished():
            if row["id"] not in logged and row["id"] not in queued:
                queued.add(row["id"])
                pending.setdefault(part.worker, []).append(row)
    tokens = sum(
        r.provenance.usage.total_tokens
        for part in parts
        for rs in part.records.values()
        for r in rs
    )
    return PriorState(
        accepted=accepted,
        vectors=vectors,
        started=len(started),
        next_index=max(started.values(), default=-1) + 1,
        pending=pending,
        tokens=tokens,
    )


class WorkerProcess:
    """The Ray actor of one worker: sync methods only, so that Ray runs :meth:`run` on a plain
    thread and the worker owns its event loop (an actor with an ``async`` method would run
    everything in Ray's loop)."""

    def __init__(self, spec: WorkerSpec, coordinator: Any) -> None:
        self.spec = spec
        self.coordinator = coordinator

    def run(self) -> dict[str, Any]:
        return Worker(self.spec, self.coordinator).run()


class DistributedRun:
    """One invocation of a distributed run into ``resolved.out_dir`` (see the module)."""

    def __init__(
        self,
        resolved: ResolvedRun,
        deps: Deps,
        workers: int,
        *,
        address: str | None = None,
        on_progress: Callable[[Progress, DistributedRun], None] | None = None,
        extra_manifest: dict[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a distributed run needs at least one worker")
        self.resolved = resolved
        self.deps = deps
        self.workers = workers
        self.address = address
        self.on_progress = on_progress
        self.extra_manifest = extra_manifest or {}
        self.files = RunFiles(resolved.out_dir)
        self.actors: dict[int, Any] = {}
        self.ray = import_ray()

    def kill_worker(self, worker: int) -> None:
        """Kill worker ``worker``'s process at once (what a crashed machine does)."""
        self.ray.kill(self.actors[worker], no_restart=True)

    def _spawn(self, worker_cls: Any, coord: Any, worker: int) -> Any:
        r = self.resolved
        spec = WorkerSpec(worker, r.out_dir.resolve(), r.run, r.settings, r.endpoints)
        actor = worker_cls.remote(spec, coord)
        self.actors[worker] = actor
        return actor.run.remote()

    def _init_ray(self) -> bool:
        """Join or start Ray; True when this call started it (and must shut it down)."""
        ray = self.ray
        if ray.is_initialized():
            return False
        env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
        kwargs: dict[str, Any] = {
            "runtime_env": {"env_vars": env},
            "log_to_driver": False,
            "logging_level": "warning",
        }
        if self.address is None:
            kwargs |= {"num_cpus": self.workers, "include_dashboard": False}
        try:
            ray.init(address=self.address, **kwargs)
        except ConnectionError as exc:  # e.g. --ray-address auto with no cluster running
            raise RayUnreachable(f"--ray-address {self.address}: {exc}") from exc
        return True

    def run(self) -> RunSummary:
        """Run to the target (or a budget), merge, write the manifest; resumable."""
        started_here = self._init_ray()
        try:
            return self._run()
        finally:
            if started_here:
                self.ray.shutdown()

    def _run(self) -> RunSummary:
        ray, deps, run = self.ray, self.deps, self.resolved.run
        t0, started_at = time.time(), datetime.now(UTC).isoformat()
        llm = deps.llm
        endpoints = {role: m.endpoint for role, m in llm.models.items()}
        resumed = check_same_run(self.files, run, llm.describe(), endpoints)
        runner = BatchRunner(deps, self.files.dir)
        prior = prior_state(read_parts(self.files.dir), runner, deps)
        progress = Progress(target=run.n)
        manifest = ManifestWriter(
            deps, run, self.files, progress, t0=t0, started_at=started_at, resumed=resumed,
            extra=self.extra_manifest,
        )  # fmt: skip
        manifest.write()
        threshold = deps.recipe.options.near_duplicate_threshold
        coord = (
            ray.remote(Coordinator)
            .options(num_cpus=0)
            .remote(run, threshold, deps.registry.embedder.dim, prior, self.workers)
        )
        worker_cls = ray.remote(WorkerProcess).options(num_cpus=1, max_restarts=0)
        refs = {self._spawn(worker_cls, coord, k): k for k in range(self.workers)}
        replaced: dict[int, int] = {}
        error: str | None = None
        snap: dict[str, Any] = {}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_S)
            for ref in ready:
                worker = refs.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayActorError:
                    part = read_part(worker, part_dir(self.files.dir, worker))
                    ray.get(
                        coord.worker_lost.remote(
                            worker, part.logged_ids, part.accepted_ids, part.started
                        )
                    )
                    if error is not None:
                        continue
                    if replaced.get(worker, 0) >= MAX_REPLACEMENTS:
                        error = (
                            f"worker w{worker} died {MAX_REPLACEMENTS + 1} times; rerun to resume"
                        )
                        ray.get(coord.abort.remote(error))
                        continue
                    replaced[worker] = replaced.get(worker, 0) + 1
                    refs[self._spawn(worker_cls, coord, worker)] = worker
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                    error = error or str(cause)
                    ray.get(coord.abort.remote(error))
            snap = ray.get(coord.snapshot.remote())
            progress.accepted, progress.started = snap["accepted"], snap["started"]
            progress.in_flight, progress.elapsed_s = snap["in_flight"], time.time() - t0
            manifest.write(live=True)
            if self.on_progress is not None:
                self.on_progress(progress, self)
        return self._finish(runner, manifest, progress, snap, replaced, resumed, t0, error)

    def _finish(
        self,
        runner: BatchRunner,
        manifest: ManifestWriter,
        progress: Progress,
        snap: dict[str, Any],
        replaced: dict[int, int],
        resumed: bool,
        t0: float,
        error: str | None,
    ) -> RunSummary:
        run = self.resolved.run
        merged = merge_parts(read_parts(self.files.dir), run.n)
        write_merged(self.files.dir, merged)
        recs = merged.records
        usage = Usage()
        for rec in (r for rs in recs.values() for r in rs):
            usage = usage + rec.provenance.usage
        progress.accepted, progress.rejected = len(recs["accepted"]), len(recs["rejected"])
        progress.surplus, progress.started = len(recs["surplus"]), len(merged.started)
        progress.in_flight, progress.usage = 0, usage
        progress.attempts = sum(r.provenance.attempts for rs in recs.values() for r in rs)
        unfinished = snap.get("pending", 0) + snap.get("in_flight", 0)
        reason: StopReason
        if error is not None:
            reason = "aborted"
        elif progress.accepted >= run.n:
            reason = "target reached"
        else:
            reason = snap.get("stopped_by") or "candidate limit"
        cost = run.cost(usage.input_tokens, usage.output_tokens)
        quotas: dict[str, int] = {}
        if run.quotas:
            for rec in recs["accepted"]:
                key = runner.quota_key(rec.task, rec.item)
                if key is not None:
                    quotas[key] = quotas.get(key, 0) + 1
        summary = RunSummary(
            out_dir=str(self.files.dir),
            accepted=progress.accepted,
            rejected=progress.rejected,
            candidates=progress.started,
            surplus=progress.surplus,
            unfinished=unfinished,
            stop_reason=reason,
            detail=stop_detail(reason, run, progress, usage, cost, unfinished, error),
            usage=usage,
            cost=round(cost, 6) if run.price_per_1k_input or run.price_per_1k_output else None,
            quotas=quotas,
            wall_s=round(time.time() - t0, 3),
            resumed=resumed,
            error=error,
        )
        manifest.extra = {
            **self.extra_manifest,
            "distributed": {
                "workers": self.workers,
                "ray_address": self.address,
                "per_worker": merged.per_worker,
                "workers_lost": snap.get("lost_workers", 0),
                "items_redone": snap.get("requeued", 0),
                "replacements": {f"w{k}": v for k, v in sorted(replaced.items())},
                "coordinator_cpu_s": snap.get("cpu_s"),
            },
        }
        manifest.write(summary, error)
        if error is not None:
            raise RunAborted(error)
        return summary
