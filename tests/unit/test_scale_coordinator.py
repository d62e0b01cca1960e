"""The coordinator of distributed runs, without Ray: exact targets, quotas, near duplicates
across workers, and a lost worker's claims and items."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from clinsynth.config import RunConfig, Settings
from clinsynth.memory.store import server_address
from clinsynth.runtime.runfiles import RunFiles, iter_jsonl, read_records
from clinsynth.scale.coordinator import Coordinator, PriorState
from clinsynth.scale.parts import Part, merge_parts, part_dir, read_parts, write_merged
from clinsynth.schemas import ItemRecord, Provenance, Task


def unit(i: int, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i % dim] = 1.0
    return v


def coordinator(run: RunConfig, prior: PriorState | None = None) -> Coordinator:
    return Coordinator(run, threshold=0.9, dim=8, prior=prior or PriorState())


def test_two_workers_never_claim_more_than_n() -> None:
    coord = coordinator(RunConfig(n=3))
    leases = [coord.lease(w) for w in (0, 1, 0, 1)]
    indices = [lease.index for lease in leases if lease.kind == "task"]
    assert indices == [0, 1, 2]  # at acceptance 1 the target needs 3 in flight, no more
    assert leases[3].kind == "wait"
    verdicts = [coord.claim(i % 2, f"t{i}", i, "accepted", None, unit(i)) for i in indices]
    assert [v.status for v in verdicts] == ["accepted"] * 3 and verdicts[-1].target_reached
    late = coord.claim(1, "t9", 9, "accepted", None, unit(5))
    assert late.status == "surplus" and "target was reached" in (late.reason or "")
    assert coord.lease(0).kind == "stop"


def test_quotas_are_leased_and_counted_per_key() -> None:
    coord = coordinator(RunConfig(quotas={"a": 2, "b": 1}))
    leases = [coord.lease(w % 2) for w in range(3)]
    assert sorted(str(lease.quota) for lease in leases) == ["a", "a", "b"]
    coord.claim(0, "x0", leases[0].index, "accepted", "a", unit(0))
    coord.claim(1, "x1", leases[1].index, "accepted", "a", unit(1))
    third = coord.claim(0, "x2", leases[2].index, "accepted", "a", unit(2))
    assert third.status == "surplus" and "quota" in (third.reason or "")
    assert coord.snapshot()["quotas"] == {"a": 2}


def test_near_duplicates_are_caught_across_workers() -> None:
    coord = coordinator(RunConfig(n=5))
    first = coord.claim(0, "a", 0, "accepted", None, unit(1))
    again = coord.claim(1, "b", 1, "accepted", None, unit(1))
    assert first.status == "accepted"
    assert again.status == "rejected" and "near_duplicate across workers" in (again.reason or "")
    assert coord.snapshot()["accepted"] == 1


def test_a_lost_worker_releases_unwritten_claims_and_requeues_its_items() -> None:
    coord = coordinator(RunConfig(n=4))
    mine = [coord.lease(0) for _ in range(2)]
    other = coord.lease(1)
    coord.claim(0, "t0", mine[0].index, "accepted", None, unit(0))
    coord.written(0, [mine[0].index])
    coord.claim(0, "t1", mine[1].index, "accepted", None, unit(1))  # died before writing it
    started = {
        mine[0].index: {"id": "t0", "index": mine[0].index, "task": {}},
        mine[1].index: {"id": "t1", "index": mine[1].index, "task": {}},
    }
    coord.worker_lost(0, logged_ids={"t0"}, accepted_ids={"t0"}, tasks=started)
    snap = coord.snapshot()
    assert snap["accepted"] == 1 and snap["requeued"] == 1 and snap["lost_workers"] == 1
    redo = coord.lease(1)  # the replacement of worker 0 is not up yet: another worker takes it
    assert redo.kind == "task" and redo.index == mine[1].index and redo.task is not None
    assert coord.claim(1, "t1", redo.index, "accepted", None, unit(1)).status == "accepted"
    assert other.index not in (mine[0].index, mine[1].index)


def test_resume_counts_what_earlier_runs_accepted() -> None:
    prior = PriorState(
        accepted=[("p0", "a"), ("p1", "b")],
        vectors=np.stack([unit(0), unit(1)]),
        started=3,
        next_index=3,
        pending={1: [{"id": "p2", "index": 2, "quota_key": "a", "task": {}}]},
    )
    coord = coordinator(RunConfig(quotas={"a": 2, "b": 1}), prior)
    lease = coord.lease(0)
    assert lease.index == 2 and lease.quota == "a"  # the unfinished item first
    assert coord.claim(0, "p2", 2, "accepted", "a", unit(0)).status == "rejected"  # near p0
    assert coord.claim(0, "p3", 3, "accepted", "b", unit(3)).status == "surplus"
    assert coord.snapshot()["accepted"] == 2


@pytest.mark.parametrize(
    ("location", "server"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http:/127.0.0.1:8000", "http://127.0.0.1:8000"),  # what Path makes of it
        ("https://chroma.example:443/", "https://chroma.example:443"),
        (".clinsynth/store", None),
        ("/data/http/store", None),
    ],
)
def test_store_locations_that_name_a_chroma_server(location: str, server: str | None) -> None:
    assert server_address(location) == server


def test_lease_many_hands_out_a_batch_and_takes_written_reports() -> None:
    coord = coordinator(RunConfig(n=4), None)
    batch = coord.lease_many(0, 10)
    assert [lease.kind for lease in batch] == ["task"] * 4 + ["wait"]
    coord.claim(0, "t0", 0, "rejected", None, None)
    assert coord.snapshot()["in_flight"] == 4  # decided, not yet written
    again = coord.lease_many(0, 10, written=[0])
    # One rejection of one lowers the acceptance rate seen: more items go out for 4 accepted.
    assert [lease.index for lease in again if lease.kind == "task"] == list(range(4, 14))
    assert coord.snapshot()["in_flight"] == 3 + 10


def test_workers_without_ray_or_with_a_cost_budget_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from clinsynth.cli_support import UserError
    from clinsynth.commands.generate import _check_distributed
    from clinsynth.generate_options import GenerateOptions, ResolvedRun

    settings = Settings(base_url="http://127.0.0.1:9/v1", api_key="k")
    resolved = ResolvedRun(RunConfig(), settings, settings.endpoints(), tmp_path)
    _check_distributed(GenerateOptions(), resolved)  # no --workers: nothing to check
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the scale extra were not installed
    with pytest.raises(UserError, match=r"pip install 'clinsynth\[scale\]'"):
        _check_distributed(GenerateOptions(workers=2), resolved)
    costly = RunConfig(cost_budget=1.0, price_per_1k_input=0.1)
    with pytest.raises(UserError, match="--cost-budget is not supported with --workers"):
        _check_distributed(GenerateOptions(workers=2), ResolvedRun(costly, settings, {}, tmp_path))


def test_a_ray_address_where_nothing_listens_is_refused_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket
    import time

    from clinsynth.cli_support import UserError
    from clinsynth.commands.generate import _check_distributed
    from clinsynth.generate_options import GenerateOptions, ResolvedRun
    from clinsynth.scale.driver import RayUnreachable, check_reachable

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        check_reachable(f"127.0.0.1:{port}")  # something answers: left to Ray
        check_reachable(f"ray://127.0.0.1:{port}")
    check_reachable("auto")  # Ray's own lookup, which answers at once
    start = time.monotonic()
    with pytest.raises(RayUnreachable, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")  # closed since: refused, not waited on
    assert time.monotonic() - start < 5
    monkeypatch.setitem(sys.modules, "ray", object())  # the extra is present; Ray never runs
    settings = Settings(base_url="http://127.0.0.1:9/v1", api_key="k")
    resolved = ResolvedRun(RunConfig(), settings, settings.endpoints(), tmp_path)
    with pytest.raises(UserError, match="ray start --head"):
        _check_distributed(GenerateOptions(ray_address=f"127.0.0.1:{port}"), resolved)


def _record(index: int, status: str) -> ItemRecord:
    task = Task(id=f"t{index}", index=index, recipe="qa")
    provenance = Provenance(recipe="qa", model="m", prompt_version="v", attempts=1)
    return ItemRecord(id=task.id, status=status, task=task, item=None, provenance=provenance)  # type: ignore[arg-type]


def _part(worker: int, **records: list[ItemRecord]) -> Part:
    by_status = {s: records.get(s, []) for s in ("accepted", "rejected", "surplus")}
    started = {
        r.task.index: {"id": r.id, "index": r.task.index, "task": r.task.model_dump()}
        for rs in by_status.values()
        for r in rs
    }
    return Part(worker, by_status, started)


def test_merge_orders_by_index_keeps_one_record_per_id_and_refuses_more_than_n() -> None:
    parts = [
        _part(0, accepted=[_record(2, "accepted")], rejected=[_record(0, "rejected")]),
        # t2 redone by worker 1 after worker 0 died having written it: counted once, accepted
        _part(1, accepted=[_record(1, "accepted")], surplus=[_record(2, "surplus")]),
    ]
    merged = merge_parts(parts, n=2)
    assert [r.id for r in merged.records["accepted"]] == ["t1", "t2"]
    assert [r.id for r in merged.records["rejected"]] == ["t0"]
    assert merged.records["surplus"] == []
    assert [row["index"] for row in merged.started] == [0, 1, 2]
    assert merged.per_worker["w0"]["accepted"] == 1 and merged.per_worker["w1"]["surplus"] == 1
    with pytest.raises(RuntimeError, match="2 accepted items for a target of 1"):
        merge_parts(parts, n=1)


def test_merged_run_stores_each_passage_once_and_reads_back_whole(tmp_path: Path) -> None:
    def write_part(worker: int, index: int, chunk: str, text: str) -> None:
        files = RunFiles(part_dir(tmp_path, worker))
        files.dir.mkdir(parents=True)
        rec = _record(index, "accepted").model_copy(
            update={"item": {"context_id": chunk, "question": f"q{index}"}}
        )
        files.accepted.write_text(json.dumps(rec.model_dump(mode="json")) + "\n")
        files.passages.write_text(
            json.dumps({"id": chunk, "text": text, "metadata": {"source": "s"}}) + "\n"
        )
        row = {"id": rec.id, "index": index, "task": rec.task.model_dump(mode="json")}
        files.started.write_text(json.dumps(row) + "\n")

    write_part(0, 0, "c1", "first passage")
    write_part(1, 1, "c2", "second passage")
    # worker 1 also grounded an item in c1: the merged run keeps one copy
    extra = RunFiles(part_dir(tmp_path, 1)).passages
    extra.write_text(extra.read_text() + json.dumps({"id": "c1", "text": "first passage"}) + "\n")
    write_merged(tmp_path, merge_parts(read_parts(tmp_path), n=2))
    files = RunFiles(tmp_path)
    assert sorted(row["id"] for row in iter_jsonl(files.passages)) == ["c1", "c2"]
    raw = list(iter_jsonl(files.accepted))
    assert [r["item"] for r in raw] == [
        {"context_id": "c1", "question": "q0"},
        {"context_id": "c2", "question": "q1"},
    ]
    records = read_records(files.accepted)
    assert [r.item["context"] for r in records if r.item] == ["first passage", "second passage"]


def test_refill_brings_other_workers_accepted_items_and_releases() -> None:
    coord = coordinator(RunConfig(n=4), PriorState(accepted=[("p0", None)], vectors=unit(0)[None]))
    first = coord.refill(0, 1)
    assert [i for i, _ in first.accepted] == ["p0"] and first.seen == 1
    lease = coord.lease(1)
    coord.claim(1, "x", lease.index, "accepted", None, unit(3))
    second = coord.refill(0, 1, seen=first.seen)
    assert [i for i, _ in second.accepted] == ["x"]
    assert np.array_equal(second.accepted[0][1], unit(3))
    coord.worker_lost(1, logged_ids=set(), accepted_ids=set(), tasks={})  # x never written
    third = coord.refill(0, 1, seen=second.seen)
    assert third.accepted == [("x", None)]
