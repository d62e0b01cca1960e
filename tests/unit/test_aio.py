"""clinsynth.runtime.aio: the garbage-collector setting of a batch run."""

from __future__ import annotations

import gc
import threading

import pytest

from clinsynth.runtime import aio


def test_quiet_gc_freezes_and_raises_threshold_then_restores() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with aio.quiet_gc():
        assert gc.get_freeze_count() > frozen_before
        assert gc.get_threshold()[0] == max(before[0], aio.YOUNG_GC_THRESHOLD)
        assert gc.get_threshold()[1:] == before[1:]
        # Garbage made inside the block is still collected.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before


def test_quiet_gc_nested_blocks_restore_once_the_last_ends() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with aio.quiet_gc():
        inner_started = threading.Event()
        leave_inner = threading.Event()

        def other_run() -> None:
            with aio.quiet_gc():
                inner_started.set()
                leave_inner.wait(5)

        worker = threading.Thread(target=other_run)
        worker.start()
        inner_started.wait(5)
    # The outer block ended while the other is still inside: the setting stays.
    assert gc.get_threshold()[0] == max(before[0], aio.YOUNG_GC_THRESHOLD)
    leave_inner.set()
    worker.join(5)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before


def test_quiet_gc_restores_after_an_error() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with pytest.raises(RuntimeError), aio.quiet_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before
