"""A batch run inside a host process: the host's collector and environment are left alone, and
model inference (reader, label check) runs in the run's thread pool, never on the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import threading
import time
from pathlib import Path
from typing import Any

import openai  # noqa: F401  (the first LLM call imports it, a one-off stall not measured here)
import pytest
from pydantic import ValidationError

from clinsynth.config import ConfigError, RunConfig, Settings
from clinsynth.evaluators.difficulty import ReaderAnswer
from clinsynth.graphs.batch import RunSummary
from clinsynth.recipes.base import Relabel
from clinsynth.recipes.qa import QARecipe
from clinsynth.runtime import aio
from clinsynth.runtime.inference import InferencePool
from clinsynth.schemas import Task
from tests.support.host import HOST_THRESHOLD, host_process_state, is_frozen
from tests.unit.test_batch import ScriptedQA, accounted, go, make_runner

POOL_THREAD = "clinsynth-inference"


def pool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(POOL_THREAD)]


def test_a_run_leaves_the_hosts_collector_and_environment_alone(
    demo_store_path: Path, tmp_path: Path
) -> None:
    marker = [object()]  # frozen with the host's objects
    with host_process_state() as env:
        loose = [object()]  # made after the host's freeze: a freeze during the run would take it
        frozen = gc.get_freeze_count()
        assert is_frozen(marker) and not is_frozen(loose)
        seen: list[tuple[bool, bool, tuple[int, int, int]]] = []

        def on_call() -> None:
            seen.append((is_frozen(marker), is_frozen(loose), gc.get_threshold()))

        model = ScriptedQA(on_call=on_call)
        runner, _ = make_runner(demo_store_path, tmp_path / "run", RunConfig(n=3), model)
        assert go(runner).accepted == 3
        # 3 items × (reasoner + generator): no call saw a freeze, an unfreeze or a threshold.
        assert seen == [(True, False, HOST_THRESHOLD)] * 6
        assert is_frozen(marker) and not is_frozen(loose)
        # Frozen objects that die leave the count; only a freeze would raise it.
        assert 0 < gc.get_freeze_count() <= frozen
        assert gc.get_threshold() == HOST_THRESHOLD
        assert dict(os.environ) == env


class SlowReader:
    """A reader whose every answer blocks its thread for ``seconds`` (as inference does)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.events: list[tuple[str, str]] = []

    def load(self) -> None:
        self.events.append(("load", threading.current_thread().name))

    def answer(self, question: str, context: str) -> ReaderAnswer:
        self.events.append(("answer", threading.current_thread().name))
        time.sleep(self.seconds)
        return ReaderAnswer(text=None, abstained=True, confidence=0.5)


class SlowLabelQA(QARecipe):
    """The qa recipe with a label check that blocks its thread (as a classifier does)."""

    seconds = 0.0
    label_threads: list[str]

    def correct_label(self, task: Task, item: dict[str, Any]) -> Relabel:
        self.label_threads.append(threading.current_thread().name)
        time.sleep(self.seconds)
        return super().correct_label(task, item)


@pytest.mark.parametrize("workers", [1, 2])
def test_slow_inference_runs_in_the_runs_pool_off_the_event_loop(
    demo_store_path: Path, tmp_path: Path, workers: int
) -> None:
    slow = 0.3
    reader = SlowReader(slow)
    recipe = SlowLabelQA(
        {"near_duplicate_threshold": 1.0, "distill_answers": False, "unanswerable_share": 0.0},
        reader=reader,
    )
    recipe.seconds, recipe.label_threads = slow, []
    runner, _ = make_runner(
        demo_store_path, tmp_path / "run", RunConfig(n=4, max_concurrency=4), ScriptedQA()
    )
    runner.deps.recipe = recipe
    runner.deps.inference_workers = workers

    async def main() -> tuple[RunSummary, aio.LoopStalls]:
        async with aio.LoopStalls() as stalls:
            summary = await runner.run()
        return summary, stalls

    summary, stalls = asyncio.run(main())
    assert summary.accepted == 4
    accounted(tmp_path / "run")
    names = {f"{POOL_THREAD}_{i}" for i in range(workers)}
    # Loaded once, in the pool, before the first item; then one answer per item, all in it.
    assert reader.events[0][0] == "load" and [e for e, _ in reader.events].count("load") == 1
    assert len(reader.events) == 1 + 4
    assert {thread for _, thread in reader.events} <= names
    assert len(recipe.label_threads) == 4 and set(recipe.label_threads) <= names
    # 8 blocking calls of 0.3 s: on the loop, each would stall it for 0.3 s.
    assert stalls.beats > 50
    assert stalls.longest_s < 0.8 * slow, stalls.longest_s  # margin for a busy machine
    assert runner.deps.inference is None and pool_threads() == []


def test_loop_stalls_sees_a_blocking_call() -> None:
    async def main() -> aio.LoopStalls:
        async with aio.LoopStalls() as stalls:
            await asyncio.sleep(0.05)
            time.sleep(0.2)  # blocks the loop
            await asyncio.sleep(0.05)
        return stalls

    stalls = asyncio.run(main())
    assert 0.15 < stalls.longest_s < 1.0 and stalls.beats >= 5


def test_each_run_loads_its_models_once_before_its_items(
    demo_store_path: Path, tmp_path: Path
) -> None:
    """A run loads its models once, before its first item; resuming is a new run: once more."""
    reader = SlowReader(0.0)
    options = {"near_duplicate_threshold": 1.0, "distill_answers": False, "unanswerable_share": 0}
    for n, answers in ((2, 2), (3, 1)):
        runner, _ = make_runner(demo_store_path, tmp_path / "run", RunConfig(n=n), ScriptedQA())
        runner.deps.recipe = QARecipe(options, reader=reader)
        reader.events.clear()
        assert go(runner).accepted == n
        assert [e for e, _ in reader.events] == ["load"] + ["answer"] * answers


def test_inference_pool_keeps_context_and_sizes_from_settings() -> None:
    item: contextvars.ContextVar[str] = contextvars.ContextVar("item", default="none")

    async def main() -> tuple[str, str]:
        pool = InferencePool(1)
        item.set("task-7")
        got = await pool.run(lambda: (item.get(), threading.current_thread().name))
        await pool.close()
        with pytest.raises(RuntimeError, match="shutdown"):
            await pool.run(item.get)
        return got

    assert asyncio.run(main()) == ("task-7", f"{POOL_THREAD}_0")
    assert Settings(inference_workers=3).inference_workers == 3
    with pytest.raises(ValidationError):
        Settings(inference_workers=0)


def test_a_reader_that_cannot_load_stops_the_run_before_any_item(
    demo_store_path: Path, tmp_path: Path
) -> None:
    """Loaded at the start, a bad reader directory is one configuration error, not an error
    record per item."""
    empty = tmp_path / "not-a-reader"
    empty.mkdir()
    model = ScriptedQA()
    runner, _ = make_runner(demo_store_path, tmp_path / "run", RunConfig(n=2), model)
    runner.deps.recipe = QARecipe({"reader_path": str(empty)})
    with pytest.raises(ConfigError, match=r"^reader_path \S+not-a-reader: ") as caught:
        go(runner)
    assert "\n" not in str(caught.value)
    assert model.call_times == [] and pool_threads() == []
