"""The batch runner with a scripted in-process model: counts, budgets, quotas, limits, resume."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sqlite3
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, ValidationError

from clinsynth.agents.deps import Deps, run_stopping_errors
from clinsynth.config import ConfigError, RunConfig, Settings
from clinsynth.graphs import batch as batch_module
from clinsynth.graphs.batch import BatchRunner, RunAborted, RunSummary, launch_target, pool_size
from clinsynth.graphs.factory import build_deps
from clinsynth.llm import (
    LLMEndpointError,
    LLMProtocolError,
    LLMRequestError,
    LLMRouter,
    LocalModelError,
    StructuredLLM,
    UsageMeter,
)
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.registry import AcceptedRegistry
from clinsynth.memory.store import EmptyStoreError, VectorStore
from clinsynth.recipes import get_recipe
from clinsynth.runtime import aio
from clinsynth.runtime.limits import CallLimits, Slots, TokenWindow, call_rank
from clinsynth.runtime.runfiles import iter_jsonl
from clinsynth.runtime.runlock import RunLocked
from clinsynth.testing import qa_responder
from clinsynth.testing.qa_responder import qa_reply
from tests.support.fakes import usage

ROLE = {"system": "system", "human": "user", "ai": "assistant"}


class ScriptedQA(BaseChatModel):
    """Answers like the stub server's qa responder, from the request alone (safe under
    concurrency); ``fail`` makes every call raise an endpoint error."""

    mode: str = "accept"
    delay_s: float = 0.0
    tokens: tuple[int, int] = (100, 20)
    fail: bool = False
    call_times: list[float] = Field(default_factory=list)
    active: int = 0
    peak: int = 0
    """Most calls in progress at once."""
    on_call: Any = None
    """Called with no argument at the start of every call (tests observe the runner)."""

    @property
    def _llm_type(self) -> str:
        return "scripted-qa"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.call_times.append(time.monotonic())
        if self.fail:
            raise LLMEndpointError("http://stub/v1: server error after retries (HTTP 500)")
        request = {
            "messages": [{"role": ROLE[m.type], "content": m.content} for m in messages],
            "response_format": kwargs.get("response_format"),
        }
        text = qa_reply(request, self.pick_mode(request))
        message = AIMessage(content=text, usage_metadata=usage(*self.tokens))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def pick_mode(self, request: dict[str, Any]) -> str:
        return self.mode

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.on_call is not None:
            self.on_call()
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay_s)
            return self._generate(messages, stop, **kwargs)
        finally:
            self.active -= 1


def make_runner(
    store: Path,
    out: Path,
    run: RunConfig,
    model: ScriptedQA | None = None,
    limits: CallLimits | None = None,
) -> tuple[BatchRunner, ScriptedQA]:
    model = model or ScriptedQA()
    meter = UsageMeter()
    llm = StructuredLLM(model, name="scripted", method="json_schema", meter=meter, limits=limits)
    emb = HashingEmbedder()
    options = {"near_duplicate_threshold": 1.0, "distill_answers": False, **run.recipe_options}
    deps = Deps(
        llm=LLMRouter({"generator": llm}, default="generator"),
        store=VectorStore(store, emb, collection="corpus"),
        registry=AcceptedRegistry(emb),
        recipe=get_recipe("qa", options),
        run=run,
    )
    return BatchRunner(deps, out, meter=meter), model


def go(runner: BatchRunner) -> RunSummary:
    return asyncio.run(runner.run())


def rows(path: Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(path))


def accounted(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """No duplicates; every started id ends in exactly one of accepted / rejected / surplus;
    returns accepted and rejected (see ``surplus_rows``)."""
    acc, rej = rows(out / "accepted.jsonl"), rows(out / "rejected.jsonl")
    sur = surplus_rows(out)
    ids = [r["id"] for r in acc + rej + sur]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(r["id"] for r in rows(out / "started.jsonl"))
    assert all(r["reasons"] for r in rej + sur)
    assert {r["status"] for r in rej} <= {"rejected"} and {r["status"] for r in sur} <= {"surplus"}
    return acc, rej


def surplus_rows(out: Path) -> list[dict[str, Any]]:
    return rows(out / "surplus.jsonl")


def test_exact_count_under_concurrency(demo_store_path: Path, tmp_path: Path) -> None:
    runner, _ = make_runner(
        demo_store_path,
        tmp_path / "run",
        RunConfig(n=7, max_concurrency=5, max_attempts=2),
        ScriptedQA(mode="mixed"),
    )
    summary = go(runner)
    acc, rej = accounted(tmp_path / "run")
    assert summary.stop_reason == "target reached" and summary.accepted == len(acc) == 7
    assert summary.rejected == len(rej)
    assert summary.candidates == len(acc) + len(rej) + len(surplus_rows(tmp_path / "run"))
    assert summary.detail == "7 of 7 items accepted"
    # Malformed output is kept on the attempt with its parse error, never dropped.
    broken = [a for r in acc + rej for a in r["history"] if a["error"]]
    assert broken and all(a["raw_output"] for a in broken)


def test_run_keeps_the_collector_off_its_starting_heap(
    demo_store_path: Path, tmp_path: Path
) -> None:
    """With ``gc_tuning`` (the CLI's opt-in), every call of a run sees the starting objects
    frozen (aio.quiet_gc); none after it."""
    frozen_before = gc.get_freeze_count()
    seen: list[tuple[int, int]] = []
    model = ScriptedQA(on_call=lambda: seen.append((gc.get_freeze_count(), gc.get_threshold()[0])))
    runner, _ = make_runner(demo_store_path, tmp_path / "run", RunConfig(n=3), model)
    runner.gc_tuning = True
    assert go(runner).accepted == 3
    assert len(seen) >= 3
    assert all(frozen > frozen_before and young >= aio.YOUNG_GC_THRESHOLD for frozen, young in seen)
    assert gc.get_freeze_count() == frozen_before


@pytest.mark.parametrize(
    ("mode", "per_item"), [("step", lambda n: n > 1), ("item", lambda n: n == 1)]
)
def test_checkpoint_modes(demo_store_path: Path, tmp_path: Path, mode: str, per_item: Any) -> None:
    """step: a checkpoint after every node; item: only each finished item's final state."""
    out = tmp_path / "run"
    runner, _ = make_runner(
        demo_store_path,
        out,
        RunConfig(n=3, max_concurrency=2, checkpoint=mode),  # type: ignore[arg-type]
    )
    assert go(runner).accepted == 3
    with sqlite3.connect(out / "checkpoints.sqlite") as db:
        counts = db.execute("SELECT COUNT(*) FROM checkpoints GROUP BY thread_id").fetchall()
    assert len(counts) == 3 and all(per_item(n) for (n,) in counts), counts


def test_label_quotas_are_met_exactly(demo_store_path: Path, tmp_path: Path) -> None:
    run = RunConfig(quotas={"answerable": 3, "unanswerable": 2}, max_concurrency=4)
    assert run.n == 5
    runner, _ = make_runner(demo_store_path, tmp_path / "run", run)
    summary = go(runner)
    acc, _ = accounted(tmp_path / "run")
    labels = Counter("answerable" if r["item"]["answerable"] else "unanswerable" for r in acc)
    assert labels == {"answerable": 3, "unanswerable": 2}
    assert summary.quotas == {"answerable": 3, "unanswerable": 2}
    started = rows(tmp_path / "run" / "started.jsonl")
    assert all(r["task"]["id"] == r["id"] for r in started)
    assert Counter(r["task"]["label"] for r in started) == labels


def test_quota_is_never_exceeded_when_the_label_changes(
    demo_store_path: Path, tmp_path: Path
) -> None:
    # "relabel": every answer is missing from its document, so the corrector makes every item
    # unanswerable; once that quota is met, the rest are surplus and the answerable one never comes.
    run = RunConfig(quotas={"answerable": 1, "unanswerable": 2}, max_candidates=6)
    runner, _ = make_runner(demo_store_path, tmp_path / "run", run, ScriptedQA(mode="relabel"))
    summary = go(runner)
    acc, rej = accounted(tmp_path / "run")
    sur = surplus_rows(tmp_path / "run")
    assert summary.stop_reason == "candidate limit" and summary.candidates == 6
    assert summary.quotas == {"unanswerable": 2} and len(acc) == 2
    assert rej == [] and len(sur) == summary.surplus == 4
    assert all(not r["item"]["answerable"] for r in acc)
    # Set aside with what the graph made: nothing lost.
    assert all("quota for label 'unanswerable'" in r["reasons"][0] and r["item"] for r in sur)
    assert "candidate limit of 6 reached" in summary.detail


def test_topic_quotas(demo_store_path: Path, tmp_path: Path) -> None:
    quotas = {"heart failure": 2, "pneumonia": 1}
    run = RunConfig(quotas=quotas, quota_by="topic", k=3, max_concurrency=3)
    runner, _ = make_runner(demo_store_path, tmp_path / "run", run)
    summary = go(runner)
    acc, _ = accounted(tmp_path / "run")
    assert Counter(r["task"]["topic"] for r in acc) == quotas == summary.quotas


def test_wall_time_stops_and_resume_continues_logged_tasks(
    demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    quotas = {"answerable": 2, "unanswerable": 2}
    slow = ScriptedQA(delay_s=0.3)
    run = RunConfig(quotas=quotas, max_concurrency=4, wall_time_s=0.4)
    summary = go(make_runner(demo_store_path, out, run, slow)[0])
    assert summary.stop_reason == "wall time" and summary.unfinished == 4
    assert summary.accepted == 0 and "resume on rerun" in summary.detail
    # The unfinished tasks resume from their logged Task (label included), not recomputed.
    started = rows(out / "started.jsonl")
    assert len(started) == 4
    runner, _ = make_runner(demo_store_path, out, run.model_copy(update={"wall_time_s": None}))
    again = go(runner)
    acc, _ = accounted(out)
    assert again.resumed and again.stop_reason == "target reached"
    assert again.quotas == quotas
    assert {r["id"] for r in acc} == {r["id"] for r in started}
    assert {r["id"]: r["task"]["label"] for r in acc} == {
        r["id"]: r["task"]["label"] for r in started
    }


def test_token_budget_counts_calls_in_flight(demo_store_path: Path, tmp_path: Path) -> None:
    # 2 calls × 120 tokens per item; with 4 in flight, finished records alone would lag behind.
    run = RunConfig(n=40, max_concurrency=4, token_budget=1000)
    runner, model = make_runner(demo_store_path, tmp_path / "run", run, ScriptedQA(delay_s=0.02))
    summary = go(runner)
    accounted(tmp_path / "run")
    assert summary.stop_reason == "token budget" and summary.accepted < 40
    spent = summary.usage.total_tokens
    # Launches stop once spent ≥ budget; at most the items then in flight finish on top.
    assert 1000 <= spent <= 1000 + 4 * 240
    assert summary.candidates == len(model.call_times) // 2
    assert "token budget of 1000 spent" in summary.detail
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stop_reason"] == "token budget" and manifest["finished"]


def test_cost_budget(demo_store_path: Path, tmp_path: Path) -> None:
    # Per call: 100 in × 1.0/1k + 20 out × 5.0/1k = 0.2; per item 0.4.
    run = RunConfig(
        n=20, max_concurrency=1, cost_budget=1.0, price_per_1k_input=1.0, price_per_1k_output=5.0
    )
    summary = go(make_runner(demo_store_path, tmp_path / "run", run)[0])
    assert summary.stop_reason == "cost budget"
    assert summary.accepted == 3 and summary.cost == pytest.approx(1.2)
    assert "cost budget of 1 spent" in summary.detail


def test_budget_and_quota_config_errors() -> None:
    with pytest.raises(ValidationError, match="must equal the sum of the quotas"):
        RunConfig(n=3, quotas={"a": 1, "b": 1})
    with pytest.raises(ValidationError, match="needs price_per_1k"):
        RunConfig(cost_budget=1.0)
    with pytest.raises(ValidationError, match="count ≥ 1"):
        RunConfig(quotas={"a": 0})
    # Limits, budgets and quotas may change between invocations of one run.
    base = RunConfig(n=2).fingerprint()
    assert RunConfig(quotas={"a": 2}, rpm=5, tpm=9, wall_time_s=3).fingerprint() == base


def test_fatal_errors_are_the_documented_classification() -> None:
    fatal = run_stopping_errors()
    stopping = [
        LLMEndpointError("down"),
        LLMProtocolError("html"),
        LocalModelError("no gguf"),
        EmptyStoreError("empty"),
    ]
    assert [isinstance(e, fatal) for e in stopping] == [True] * 4
    assert not isinstance(LLMRequestError("HTTP 400"), fatal)
    assert not isinstance(ValueError("bad item"), fatal)
    # No module-global list filled at import: the policy travels with each run's Deps.
    assert not hasattr(batch_module, "FATAL_ERRORS")
    assert not hasattr(batch_module, "register_fatal")


def test_build_deps_sets_the_fatal_policy(demo_store_path: Path) -> None:
    settings = Settings(base_url="http://127.0.0.1:9/v1", api_key="k", embedder="hashing")
    deps, _ = build_deps(
        settings, RunConfig(n=1), store_path=demo_store_path, embedder=HashingEmbedder()
    )
    classification = (LLMEndpointError, LocalModelError, EmptyStoreError)
    assert deps.fatal == run_stopping_errors() == classification


def test_fatal_policy_is_per_run(demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = RunConfig(n=2, max_concurrency=2, max_candidates=3)
    runner, _ = make_runner(demo_store_path, out, run, ScriptedQA(fail=True))
    assert runner.deps.fatal == run_stopping_errors()
    runner.deps.fatal = ()  # this run treats an endpoint failure as the item's failure
    summary = go(runner)
    assert summary.stop_reason == "candidate limit" and summary.error is None
    assert (summary.accepted, summary.rejected, summary.candidates) == (0, 3, 3)
    reasons = [r["reasons"] for r in rows(out / "rejected.jsonl")]
    assert (
        reasons
        == [["error: LLMEndpointError: http://stub/v1: server error after retries (HTTP 500)"]] * 3
    )


def test_endpoint_failure_aborts_consistently_then_resumes(
    demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = RunConfig(n=3, max_concurrency=2)
    runner, _ = make_runner(demo_store_path, out, run, ScriptedQA(fail=True))
    with pytest.raises(RunAborted, match="HTTP 500"):
        go(runner)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stop_reason"] == "aborted" and "HTTP 500" in manifest["error"]
    assert rows(out / "accepted.jsonl") == rows(out / "rejected.jsonl") == []
    started = {r["id"] for r in rows(out / "started.jsonl")}
    assert len(started) == 2  # the failed items stay pending, nothing is rejected for it
    summary = go(make_runner(demo_store_path, out, run)[0])
    acc, rej = accounted(out)
    assert summary.resumed and summary.accepted == 3 and rej == []
    assert started <= {r["id"] for r in acc}


def test_rpm_limit_spaces_every_call_of_the_run(demo_store_path: Path, tmp_path: Path) -> None:
    run = RunConfig(n=3, max_concurrency=3)
    limits = CallLimits(rpm=1200)  # one call per 50 ms, shared by all roles and items
    runner, model = make_runner(demo_store_path, tmp_path / "run", run, limits=limits)
    assert go(runner).accepted == 3
    times = sorted(model.call_times)
    assert len(times) == 6
    gaps = [b - a for a, b in pairwise(times)]
    assert min(gaps) >= 0.04, gaps


def test_tpm_limit_holds_calls_until_tokens_expire(demo_store_path: Path, tmp_path: Path) -> None:
    limits = CallLimits(tpm=500)
    assert limits.tokens is not None
    limits.tokens.window_s = 0.5  # a short window keeps the test fast; the logic is the same
    run = RunConfig(n=3, max_concurrency=3)
    runner, model = make_runner(demo_store_path, tmp_path / "run", run, limits=limits)
    assert go(runner).accepted == 3
    # Each call costs 120 tokens: at most 4 fit in any 0.5 s window.
    times = sorted(model.call_times)
    assert all(times[i + 4] - times[i] >= 0.45 for i in range(len(times) - 4)), times


def test_token_window_reserves_then_settles() -> None:
    now = [0.0]
    window = TokenWindow(100, window_s=10, clock=lambda: now[0])
    first = window._try_reserve(60)
    assert not isinstance(first, float)
    assert window._try_reserve(60) == 10  # must wait for the first charge to expire
    window.settle(first, 30)  # the call used less than reserved
    assert not isinstance(window._try_reserve(60), float)
    assert window.used() == 90
    now[0] = 10.0
    assert window.used() == 0
    big = window._try_reserve(500)  # larger than the limit: runs alone in an empty window
    assert not isinstance(big, float) and window._try_reserve(1) == 10


@pytest.mark.parametrize(
    ("remaining", "rate", "target"),
    [(0, 0.5, 0), (5, 1.0, 5), (7, 0.95, 9), (1, 0.5, 5), (3, 0.0, 128)],
)
def test_launch_target(remaining: int, rate: float, target: int) -> None:
    assert launch_target(remaining, rate) == target


class HalfRejected(ScriptedQA):
    """Items of every other document are rejected (they keep copying the document)."""

    def pick_mode(self, request: dict[str, Any]) -> str:
        document = qa_responder._document(qa_responder._user_text(request))
        return "reject" if qa_responder._digest(document) % 2 else "accept"


def test_extra_candidates_are_cancelled_and_logged_once_the_target_is_met(
    demo_store_path: Path, tmp_path: Path
) -> None:
    # Half the items are rejected, so the runner keeps extra candidates in flight near the end;
    # those still running when the target is met are cancelled and logged, never dropped.
    out = tmp_path / "run"
    run = RunConfig(n=6, max_concurrency=8, max_attempts=2, max_candidates=40)
    runner, _ = make_runner(demo_store_path, out, run, HalfRejected(delay_s=0.05))
    summary = go(runner)
    acc, rej = accounted(out)
    sur = surplus_rows(out)
    assert summary.stop_reason == "target reached" and len(acc) == 6
    assert summary.rejected == len(rej) and summary.surplus == len(sur)
    assert summary.candidates == len(acc) + len(rej) + len(sur)
    cancelled = [r for r in sur if r["reasons"][0].startswith("surplus: cancelled in flight")]
    assert cancelled, [r["reasons"][0] for r in sur]
    assert not any(r["reasons"][0].startswith("surplus") for r in rej)
    assert any(r["provenance"]["usage"]["calls"] > 0 for r in cancelled)  # charged, not lost
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["surplus"] == len(sur)
    assert manifest["tokens"]["total_tokens"] == sum(
        r["provenance"]["usage"]["input_tokens"] + r["provenance"]["usage"]["output_tokens"]
        for r in acc + rej + sur
    )
    # The near-duplicate registry holds the accepted items only, as a resumed run rebuilds it.
    assert sorted(runner.deps.registry._ids) == sorted(r["id"] for r in acc)


@pytest.mark.parametrize(
    ("concurrency", "cap", "pool"), [(32, 32, 64), (1, 1, 2), (4, None, 4), (4, 8, 4), (8, 4, 16)]
)
def test_pool_size_adds_items_only_when_calls_are_capped(
    concurrency: int, cap: int | None, pool: int
) -> None:
    assert pool_size(concurrency, cap) == pool


def test_concurrency_slots_cap_calls_in_every_event_loop() -> None:
    limits = CallLimits(concurrency=2)
    active, peaks = [0], []

    async def one() -> None:
        async with limits.call(0):
            active[0] += 1
            peaks.append(active[0])
            await asyncio.sleep(0.01)
            active[0] -= 1

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(7)))

    asyncio.run(many())
    asyncio.run(many())  # a semaphore bound to the first, closed loop would fail here
    assert max(peaks) == 2 and len(peaks) == 14
    with pytest.raises(ValueError, match="concurrency"):
        CallLimits(concurrency=0)


def test_call_level_slots_cap_calls_of_a_model_without_http_slots(
    demo_store_path: Path, tmp_path: Path
) -> None:
    run = RunConfig(n=8, max_concurrency=4)
    model = ScriptedQA(delay_s=0.02)
    limits = CallLimits(concurrency=2)  # fewer slots than items: the calls wait for them
    runner, _ = make_runner(demo_store_path, tmp_path / "run", run, model, limits=limits)
    in_flight: list[int] = []
    model.on_call = lambda: in_flight.append(runner.progress.in_flight)
    assert go(runner).accepted == 8
    # No HTTP-level slots: the pool stays at max_concurrency, and calls never exceed the cap.
    assert model.peak == 2 and max(in_flight) == 4
    accounted(tmp_path / "run")


def test_router_request_cap_needs_every_model_capped() -> None:
    capped = CallLimits(concurrency=3)
    a = StructuredLLM(ScriptedQA(), name="a", limits=capped, transport_slots=True)
    b = StructuredLLM(ScriptedQA(), name="b", limits=capped, transport_slots=True)
    assert LLMRouter({"generator": a, "critic": b}, default="generator").request_cap() == 3
    free = StructuredLLM(ScriptedQA(), name="c", limits=CallLimits(rpm=60), transport_slots=True)
    assert LLMRouter({"generator": a, "critic": free}, default="generator").request_cap() is None
    local = StructuredLLM(ScriptedQA(), name="d", limits=capped)  # slots around the call
    assert LLMRouter({"generator": a, "critic": local}, default="generator").request_cap() is None


def test_slots_survive_cancelled_waiters_and_serve_newest_first_at_the_end() -> None:
    async def scenario() -> list[str]:
        slots, order = Slots(1), []

        async def hold(name: str, rank: int, seconds: float) -> None:
            call_rank.set(rank)
            async with slots:
                order.append(name)
                await asyncio.sleep(seconds)

        first = asyncio.create_task(hold("first", 0, 0.05))
        await asyncio.sleep(0.01)
        cancelled = asyncio.create_task(hold("cancelled", 1, 0))
        old = asyncio.create_task(hold("old", 2, 0))
        new = asyncio.create_task(hold("new", 3, 0))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        slots.serve_newest_first(True)  # queued: old (rank 2), new (rank 3)
        await asyncio.gather(first, old, new, cancelled, return_exceptions=True)
        async with slots:  # nothing leaked: the slot is free again
            order.append("after")
        return order

    assert asyncio.run(scenario()) == ["first", "new", "old", "after"]


def test_slot_handed_to_a_waiter_cancelled_before_it_runs_passes_on() -> None:
    async def scenario() -> list[str]:
        slots, got = Slots(1), []

        async def take(name: str) -> None:
            async with slots:
                got.append(name)

        async with slots:
            b = asyncio.create_task(take("b"))
            c = asyncio.create_task(take("c"))
            await asyncio.sleep(0.01)  # both queued
        b.cancel()  # its slot was handed over on release, before it could run
        await asyncio.gather(b, c, return_exceptions=True)
        async with slots:
            got.append("after")
        return got

    assert asyncio.run(scenario()) == ["c", "after"]


def test_two_runners_on_one_directory_one_writes(demo_store_path: Path, tmp_path: Path) -> None:
    """Two runs of one directory in one process: the second is refused before writing."""
    out = tmp_path / "run"
    run = RunConfig(n=4, max_concurrency=2)
    first, _ = make_runner(demo_store_path, out, run, ScriptedQA(delay_s=0.05))
    second, model = make_runner(demo_store_path, out, run)

    async def both() -> list[RunSummary | BaseException]:
        one = asyncio.create_task(first.run())
        await asyncio.sleep(0.05)  # the first holds the lock by now
        return await asyncio.gather(one, second.run(), return_exceptions=True)

    done, refused = asyncio.run(both())
    assert isinstance(done, RunSummary) and done.accepted == 4
    assert isinstance(refused, RunLocked) and f"pid {os.getpid()}" in str(refused)
    assert model.call_times == []
    acc, rej = accounted(out)
    assert len(acc) == 4 and rej == []
    assert go(make_runner(demo_store_path, out, run)[0]).resumed  # released afterwards


def test_resume_with_a_smaller_n_never_exceeds_it(demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    runner, _ = make_runner(demo_store_path, out, RunConfig(n=2))
    assert go(runner).accepted == 2
    # As if the run had been killed with two more tasks started (n was 4 then).
    with (out / "started.jsonl").open("a") as fh:
        for index in (2, 3):
            task = runner.task_for(index)
            row = {"id": task.id, "index": index, "task": task.model_dump(mode="json")}
            fh.write(json.dumps(row) + "\n")
    with pytest.raises(ConfigError, match="already holds 2 accepted items, more than n=1"):
        go(make_runner(demo_store_path, out, RunConfig(n=1))[0])
    again, model = make_runner(demo_store_path, out, RunConfig(n=2))
    summary = go(again)
    acc, rej = accounted(out)
    sur = surplus_rows(out)
    assert summary.resumed and summary.stop_reason == "target reached"
    assert len(acc) == summary.accepted == 2 and rej == [] and model.call_times == []
    assert [r["reasons"][0] for r in sur] == [
        "surplus: not resumed, the target was reached first"
    ] * 2
    assert summary.surplus == 2 and summary.candidates == 4


def test_other_model_in_the_run_directory_is_refused(demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert go(make_runner(demo_store_path, out, RunConfig(n=1))[0]).accepted == 1
    other, model = make_runner(demo_store_path, out, RunConfig(n=2))
    other.deps.llm.models["generator"].name = "other-model"
    with pytest.raises(ConfigError, match="made with model scripted, not model other-model"):
        go(other)
    assert model.call_times == [] and len(rows(out / "accepted.jsonl")) == 1
