"""Keep third-party progress bars (transformers' "Loading weights", ``datasets``' "Saving the
dataset", huggingface_hub downloads) out of our output, for one block only.

Each library's switch is global, so :func:`quiet_progress_bars` turns the bars off on entry
and, on exit, turns back on only those that were on before: a host process that chose its
own setting finds it as it was. Only libraries already imported are touched (importing one
just to silence it would cost seconds); import the library before entering the block.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_restore: list[Callable[[], None]] = []


def _switches() -> list[tuple[Callable[[], bool], Callable[[], None], Callable[[], None]]]:
    """(is on, turn off, turn on) of each imported library's progress bars."""
    found = []
    if "transformers" in sys.modules:
        from transformers.utils import logging as tf_logging

        found.append(
            (
                tf_logging.is_progress_bar_enabled,
                tf_logging.disable_progress_bar,
                tf_logging.enable_progress_bar,
            )
        )
    if "datasets" in sys.modules:
        from datasets.utils import logging as ds_logging

        found.append(
            (
                ds_logging.is_progress_bar_enabled,
                ds_logging.disable_progress_bar,
                ds_logging.enable_progress_bar,
            )
        )
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import utils as hub_utils

        found.append(
            (
                lambda: not hub_utils.are_progress_bars_disabled(),
                hub_utils.disable_progress_bars,
                hub_utils.enable_progress_bars,
            )
        )
    return found


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Hide the progress bars of the Hugging Face libraries inside the block (nested and
    concurrent blocks share one switch: the bars come back when the last block ends)."""
    global _depth
    with _lock:
        if _depth == 0:
            _restore.clear()
            for is_on, off, on in _switches():
                if is_on():
                    off()
                    _restore.append(on)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for on in _restore:
                    on()
                _restore.clear()
