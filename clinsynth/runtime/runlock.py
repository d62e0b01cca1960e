"""One writer per run directory: an exclusive ``flock`` on ``<run>/.lock`` for the whole run.

The kernel drops a ``flock`` when its holder dies (kill -9 included), so a lock left by a
killed process is simply taken over; its JSON body (pid, host, start time) is then only a
record, reported as :attr:`RunLock.stale`. Each :class:`RunLock` opens its own file
description, so two runs in one process (two tool calls) exclude each other as well.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from clinsynth.config import ConfigError

LOCK_NAME = ".lock"
_BUSY_RETRIES = 10
"""Tries, 20 ms apart, before a busy lock counts as held (``inspect`` probes it briefly)."""


class RunLocked(ConfigError):
    """Another writer holds the run directory; the message names it in one line."""


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``pid 12 on host since 2026-…`` for a lock body (or a placeholder for an unknown one)."""
    if not holder:
        return "another process"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
        f"since {holder.get('started', '?')}"
    )


def _read_body(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        body = json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _try_flock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


class RunLock:
    """Exclusive lock of one run directory; use as a context manager or acquire/release."""

    def __init__(
        self,
        run_dir: Path,
        *,
        wait: bool = False,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        """``wait``: block until the holder finishes instead of raising :class:`RunLocked`;
        ``on_wait`` gets the holder's description once, before blocking."""
        self.path = Path(run_dir) / LOCK_NAME
        self.wait = wait
        self.on_wait = on_wait
        self.stale: dict[str, Any] | None = None
        """The body left by a holder that died without releasing (taken over)."""
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLocked` naming the holder (``wait``: block)."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the run directory {self.path.parent}: {exc.strerror or exc}"
            ) from exc
        try:
            if not self._lock(fd):
                holder = describe_holder(_read_body(fd))
                if not self.wait:
                    raise RunLocked(
                        f"{self.path.parent} is in use by {holder}; wait for it (--wait) "
                        "or use another --out"
                    )
                if self.on_wait is not None:
                    self.on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            # A released lock leaves an empty body: anything left is from a holder that died.
            self.stale = _read_body(fd)
            body = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(body).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    @staticmethod
    def _lock(fd: int) -> bool:
        for attempt in range(_BUSY_RETRIES):
            if _try_flock(fd, fcntl.LOCK_EX):
                return True
            if attempt + 1 < _BUSY_RETRIES:
                time.sleep(0.02)
        return False

    def release(self) -> None:
        """Clear the body and drop the lock (the file stays: unlinking it would race)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def lock_holder(run_dir: Path) -> dict[str, Any] | None:
    """The body of the live lock on ``run_dir`` ({} if unreadable), or None when no process
    holds it; probes with a shared lock for an instant and never creates the file."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if _try_flock(fd, fcntl.LOCK_SH):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        return _read_body(fd) or {}
    finally:
        os.close(fd)
