"""A host application's process-wide state, set up for tests that a run leaves it alone."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

HOST_THRESHOLD = (1234, 11, 12)
"""The host's own collector thresholds (Python's default is (700, 10, 10))."""

LIBRARY_ENV = ("ANONYMIZED_TELEMETRY", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
"""Variables a library might be tempted to set; removed so that a write would show."""


@contextmanager
def host_process_state() -> Iterator[dict[str, str]]:
    """A host that froze its objects (``gc.freeze``) and set its own collector thresholds,
    without the variables in ``LIBRARY_ENV``; yields the environment it starts with. All is
    restored afterwards. (Frozen objects that die leave the frozen generation, so its count
    may fall during a run; only a ``gc.freeze`` makes it grow.)"""
    threshold, env = gc.get_threshold(), dict(os.environ)
    for name in LIBRARY_ENV:
        os.environ.pop(name, None)
    gc.freeze()
    gc.set_threshold(*HOST_THRESHOLD)
    try:
        yield dict(os.environ)
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        os.environ.clear()
        os.environ.update(env)


def is_frozen(obj: object) -> bool:
    """Whether ``obj`` (a container the collector tracks) is in the frozen generation, which
    ``gc.get_objects`` leaves out."""
    assert gc.is_tracked(obj)
    return not any(o is obj for o in gc.get_objects())
