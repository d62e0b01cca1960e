"""The coordinator of a distributed run: one exact target across any number of workers.

Plain Python (the driver wraps it in a Ray actor, whose methods run one at a time, so every
decision below is atomic). The protocol, per item:

1. a worker asks :meth:`Coordinator.lease` for work: an item index (with its quota key, or the
   whole task of an item an earlier worker started and did not finish), ``wait`` (enough items
   are in flight to reach the target) or ``stop``;
2. when the item's graph has finished, the worker asks :meth:`Coordinator.claim` what its
   record counts as: an accepted item is checked against every accepted item of every worker
   (near duplicates) and against the target and its quota, and counted there and then;
3. the worker appends the record to its own part of the run directory, then reports
   :meth:`Coordinator.written`. Until then the item stays leased to the worker.

A worker that dies is reported by the driver with the ids its part holds
(:meth:`Coordinator.worker_lost`): its claims whose record never reached its part are
released, its leased items that did not reach its part are leased again (to its replacement
first, which has its checkpoints). So the accepted items written never exceed ``n``, whatever
the number of workers or when one dies.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from clinsynth.config import RunConfig
from clinsynth.evaluators.similarity import near_duplicate_check
from clinsynth.graphs.run_state import launch_target
from clinsynth.memory.registry import AcceptedRegistry

LeaseKind = Literal["task", "wait", "stop"]


@dataclass(frozen=True)
class Lease:
    """What a worker is to do next: run the item at ``index`` (for quota ``quota``, or the
    given ``task`` when it resumes one), ``wait`` and ask again, or ``stop``."""

    kind: LeaseKind
    index: int = -1
    quota: str | None = None
    task: dict[str, Any] | None = None
    target_reached: bool = False
    """With ``stop``: the target is met, so items still in flight are surplus."""


@dataclass(frozen=True)
class Verdict:
    """What a finished item counts as: its status and, when the coordinator changed it, why."""

    status: Literal["accepted", "rejected", "surplus"]
    reason: str | None = None
    target_reached: bool = False


@dataclass(frozen=True)
class Refill:
    """A worker's refill: its leases, and the changes to the set of accepted items since its
    last refill (``(id, vector)`` added, ``(id, None)`` released), so that its own critic
    sees the other workers' items as near-duplicate neighbours."""

    leases: list[Lease]
    accepted: list[tuple[str, np.ndarray | None]]
    seen: int
    """Pass back as ``seen`` next time."""


@dataclass
class PriorState:
    """What earlier invocations left in the run's parts (see ``scale.parts``)."""

    accepted: list[tuple[str, str | None]] = field(default_factory=list)
    """(id, quota key) of every accepted item."""
    vectors: np.ndarray | None = None
    """Their near-duplicate embeddings, one row per accepted item."""
    started: int = 0
    next_index: int = 0
    pending: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """Worker id → the tasks it started and never logged (resumed first, by it if it can)."""
    tokens: int = 0


class _VectorsOnly:
    """An embedder stand-in for a registry fed with precomputed vectors only."""

    name = "precomputed"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("the coordinator's registry takes precomputed vectors only")


class Coordinator:
    """Leases item indices, counts accepted items per quota, and checks near duplicates
    across workers, for one run (see the module's protocol)."""

    def __init__(
        self, run: RunConfig, threshold: float, dim: int, prior: PriorState, workers: int = 1
    ) -> None:
        self.run = run
        self.workers = workers
        self.threshold = threshold
        self.t0 = time.time()
        self.registry = AcceptedRegistry(_VectorsOnly(dim))
        self.changes: list[tuple[str, np.ndarray | None]] = []
        """Accepted items' vectors as they were counted, and releases (``None``), in order."""
        self.accepted: dict[str, tuple[int, str | None]] = {}
        """Claimed accepted id → (worker, quota key); worker -1: logged by an earlier run."""
        self.quota_accepted: Counter[str] = Counter()
        for row, (item_id, key) in enumerate(prior.accepted):
            self.accepted[item_id] = (-1, key)
            if key is not None:
                self.quota_accepted[key] += 1
            if prior.vectors is not None:
                self.registry.add_vector(item_id, prior.vectors[row])
                self.changes.append((item_id, prior.vectors[row]))
        self.started = prior.started
        self.next_index = prior.next_index
        self.pending = {w: list(tasks) for w, tasks in prior.pending.items() if tasks}
        self.tokens = prior.tokens
        self.leased: dict[int, tuple[int, str | None]] = {}
        """Index → (worker, quota key) of every item in flight."""
        self.outcomes: deque[int] = deque(maxlen=64)
        self.stopped_by: str | None = None
        self.error: str | None = None
        self.lost_workers = 0
        self.requeued = 0

    # -- decisions --------------------------------------------------------------------------

    def target_reached(self) -> bool:
        return len(self.accepted) >= self.run.n

    def accept_rate(self) -> float:
        return (sum(self.outcomes) + 1) / (len(self.outcomes) + 1)

    def budget_spent(self) -> str | None:
        cfg = self.run
        if cfg.wall_time_s is not None and time.time() - self.t0 >= cfg.wall_time_s:
            return "wall time"
        if cfg.token_budget is not None and self.tokens >= cfg.token_budget:
            return "token budget"
        return None

    def _quota_in_flight(self) -> Counter[str]:
        return Counter(key for _, key in self.leased.values() if key is not None)

    def next_quota_key(self) -> str | None:
        """The quota that most needs another item (None: all are full or in flight)."""
        rate, flying = self.accept_rate(), self._quota_in_flight()
        needs = {
            key: launch_target(wanted - self.quota_accepted[key], rate) - flying[key]
            for key, wanted in self.run.quotas.items()
        }
        key = max(needs, key=lambda k: needs[k])
        return key if needs[key] > 0 else None

    def _idle(self) -> Lease:
        """Nothing to start now: wait while items are in flight or may be requeued, else stop."""
        return Lease("wait") if self.leased else Lease("stop")

    def lease(self, worker: int) -> Lease:
        """The next thing ``worker`` should do (see :class:`Lease`)."""
        if self.target_reached():
            return Lease("stop", target_reached=True)
        if self.error is not None:
            return Lease("stop")
        own = self.pending.get(worker)
        source = own or next((tasks for tasks in self.pending.values() if tasks), None)
        if source:
            task = source.pop(0)
            key = task.get("quota_key")
            self.leased[int(task["index"])] = (worker, key)
            return Lease("task", int(task["index"]), key, task)
        if self.started >= self.run.candidate_limit:
            self.stopped_by = self.stopped_by or "candidate limit"
            return self._idle()
        reason = self.budget_spent()
        if reason is not None:
            self.stopped_by = self.stopped_by or reason
            return self._idle()
        wanted = launch_target(self.run.n - len(self.accepted), self.accept_rate())
        if len(self.leased) >= wanted:
            return Lease("wait")
        # A fair share each, so that the first worker up does not take a small run alone.
        mine = sum(1 for owner, _ in self.leased.values() if owner == worker)
        if mine >= -(-wanted // self.workers):
            return Lease("wait")
        key = None
        if self.run.quotas:
            key = self.next_quota_key()
            if key is None:
                return Lease("wait")
        index = self.next_index
        self.next_index += 1
        self.started += 1
        self.leased[index] = (worker, key)
        return Lease("task", index, key)

    def lease_many(self, worker: int, count: int, written: list[int] | None = None) -> list[Lease]:
        """Up to ``count`` leases in one call (one round trip instead of ``count``), after
        noting the items ``worker`` has ``written`` since its last call; ends with the first
        lease that is not a task."""
        if written:
            self.written(worker, written)
        leases: list[Lease] = []
        while len(leases) < count:
            lease = self.lease(worker)
            leases.append(lease)
            if lease.kind != "task":
                break
        return leases

    def refill(
        self, worker: int, count: int, written: list[int] | None = None, seen: int = 0
    ) -> Refill:
        """:meth:`lease_many`, plus the accepted items' changes since ``seen``."""
        leases = self.lease_many(worker, count, written)
        return Refill(leases, self.changes[seen:], len(self.changes))

    def claim(
        self,
        worker: int,
        item_id: str,
        index: int,
        status: str,
        quota_key: str | None,
        vector: np.ndarray | None,
        tokens: int = 0,
    ) -> Verdict:
        """What the finished item ``item_id`` (graph status ``status``) counts as; an accepted
        one is counted here, before its worker writes it."""
        self.tokens += tokens
        if status not in ("accepted", "rejected", "surplus"):
            raise ValueError(f"unknown status {status!r}")
        if index in self.leased:  # its quota is no longer in flight once it is decided
            self.leased[index] = (worker, None)
        if status != "accepted":
            if status == "rejected":
                self.outcomes.append(0)
            return Verdict(status, None, self.target_reached())  # type: ignore[arg-type]
        self.outcomes.append(1)
        if item_id in self.accepted:  # a redone item claimed before: still counted once
            self.accepted[item_id] = (worker, quota_key)
            return Verdict("accepted", None, self.target_reached())
        surplus = self._surplus_reason(quota_key)
        if surplus is not None:
            return Verdict("surplus", surplus, self.target_reached())
        if vector is not None:
            check = near_duplicate_check(
                self.registry.nearest_vector(np.asarray(vector, dtype=np.float32)),
                threshold=self.threshold,
            )
            if not check.passed:
                return Verdict(
                    "rejected",
                    f"near_duplicate across workers: {check.reason}",
                    self.target_reached(),
                )
            self.registry.add_vector(item_id, np.asarray(vector, dtype=np.float32))
            self.changes.append((item_id, np.asarray(vector, dtype=np.float32)))
        self.accepted[item_id] = (worker, quota_key)
        if quota_key is not None:
            self.quota_accepted[quota_key] += 1
        return Verdict("accepted", None, self.target_reached())

    def claim_many(self, worker: int, claims: list[tuple[Any, ...]]) -> list[Verdict]:
        """:meth:`claim` for each ``(item_id, index, status, quota_key, vector, tokens)``, in
        order, in one call."""
        return [self.claim(worker, *claim) for claim in claims]

    def _surplus_reason(self, key: str | None) -> str | None:
        cfg = self.run
        if self.target_reached():
            return "surplus: the target was reached first"
        if cfg.quotas:
            if key not in cfg.quotas:
                return f"surplus: no quota for {cfg.quota_by} {key!r}"
            if self.quota_accepted[key] >= cfg.quotas[key]:
                return f"surplus: the quota for {cfg.quota_by} {key!r} was met first"
        return None

    def written(self, worker: int, indices: list[int]) -> None:
        """``worker`` has appended the records of these items to its part."""
        for index in indices:
            if self.leased.get(index, (None,))[0] == worker:
                del self.leased[index]

    def worker_lost(
        self, worker: int, logged_ids: set[str], accepted_ids: set[str], tasks: dict[int, dict]
    ) -> None:
        """``worker`` died: its part holds ``logged_ids`` (``accepted_ids`` of them accepted)
        and started ``tasks`` (index → task row). Release its claims that never reached its
        part and lease its unfinished items again, to its replacement first."""
        self.lost_workers += 1
        for item_id, (owner, key) in list(self.accepted.items()):
            if owner == worker and item_id not in accepted_ids:
                del self.accepted[item_id]
                self.changes.append((item_id, None))
                self.registry.discard(item_id)
                if key is not None:
                    self.quota_accepted[key] -= 1
        for index, (owner, key) in list(self.leased.items()):
            if owner != worker:
                continue
            del self.leased[index]
            task = tasks.get(index)
            if task is None:  # leased, never started: give the index back as a fresh task
                task = {"index": index, "quota_key": key}
            elif task.get("id") in logged_ids:
                continue
            self.pending.setdefault(worker, []).append(task)
            self.requeued += 1

    def abort(self, error: str) -> None:
        """A worker hit an error that fails every item: lease nothing more."""
        self.error = self.error or error

    # -- reporting --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Counters for progress and the manifest."""
        return {
            "accepted": len(self.accepted),
            "started": self.started,
            "in_flight": len(self.leased),
            "pending": sum(len(t) for t in self.pending.values()),
            "quotas": dict(self.quota_accepted),
            "tokens": self.tokens,
            "stopped_by": self.stopped_by,
            "lost_workers": self.lost_workers,
            "requeued": self.requeued,
            "target_reached": self.target_reached(),
            "error": self.error,
            "cpu_s": round(time.process_time(), 3),
        }
