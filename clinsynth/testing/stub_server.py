"""A local OpenAI-compatible chat completions server for tests and benchmarks.

Stdlib HTTP only. Replies come from a ``responder`` callable; faults (429, 500, timeouts,
truncated bodies, malformed JSON content, dropped connections, and replies that are no chat
completion: an HTML page, ``{}``, no choices, an oversized body) are injected from a seeded RNG
or from a fixed ``sequence``; prompts containing ``refuse_marker`` are answered 400. Run
standalone with ``python -m clinsynth.testing.stub_server``.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import ThreadingHTTPServer

from clinsynth.testing.stub_faults import (
    RATE_FIELDS,
    FaultConfig,
    FaultKind,
    Received,
    Responder,
    StubStats,
)
from clinsynth.testing.stub_handler import Handler, QuietServer
from clinsynth.testing.stub_replies import (
    fixed_text_responder,
    load_responder,
    minimal_instance,
    requested_schema,
    schema_echo_responder,
)

__all__ = [
    "FaultConfig",
    "FaultKind",
    "Received",
    "Responder",
    "StubServer",
    "StubStats",
    "load_responder",
    "minimal_instance",
    "requested_schema",
    "schema_echo_responder",
]


class StubServer:
    """OpenAI-compatible chat completions server on 127.0.0.1 (use as a context manager)."""

    def __init__(
        self,
        responder: Responder,
        *,
        latency_s: float = 0.0,
        faults: FaultConfig | None = None,
        seed: int = 0,
        reject_json_schema: bool = False,
        reject_tools: bool = False,
        port: int = 0,
        model_ids: tuple[str, ...] = ("stub-model",),
        keep_requests: bool = True,
    ) -> None:
        """``keep_requests=False`` leaves ``received`` empty: a server in its own process
        has no reader for it, and thousands of kept bodies slow its garbage collector."""
        self.responder = responder
        self.keep_requests = keep_requests
        self.latency_s = latency_s
        self.faults = faults or FaultConfig()
        self.reject_json_schema = reject_json_schema
        self.reject_tools = reject_tools
        self.model_ids = model_ids
        self.stats = StubStats()
        self.received: list[Received] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._sequence = list(self.faults.sequence)
        self._stopping = threading.Event()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (still readable after ``stop()``)."""
        if self._url is None:
            raise RuntimeError("StubServer was never started")
        return self._url

    def start(self) -> StubServer:
        """Bind and serve in a daemon thread."""
        handler = type("_BoundHandler", (Handler,), {"stub": self})
        self._stopping.clear()
        self._httpd = QuietServer(("127.0.0.1", self._port), handler)
        self._url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; sleeping handlers (latency, timeout faults) are woken up."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def draw_fault(self) -> FaultKind | None:
        """Next fault: from the fixed sequence first, then by the configured rates."""
        with self._lock:
            if self._sequence:
                return self._sequence.pop(0)
            r = self._rng.random()
            acc = 0.0
            for kind, name in RATE_FIELDS:
                acc += getattr(self.faults, name)
                if r < acc:
                    return kind
            return None

    def derived_rng(self) -> random.Random:
        """A per-call RNG derived from the seeded one (for damaging content)."""
        with self._lock:
            return random.Random(self._rng.random())

    def record(self, entry: Received) -> None:
        if not self.keep_requests:
            return
        with self._lock:
            self.received.append(entry)


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible stub server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--echo-schema", action="store_true", help="answer with a minimal schema instance"
    )
    parser.add_argument(
        "--qa-mode", default=None, help="answer like the qa recipe's scripted model in this mode"
    )
    parser.add_argument(
        "--responder",
        default=None,
        help="MODULE:FACTORY[:ARG] - reply with FACTORY(ARG) (or FACTORY()) from MODULE",
    )
    parser.add_argument("--reject-json-schema", action="store_true")
    parser.add_argument("--reject-tools", action="store_true")
    for name in ("retry_after_s", "timeout_sleep_s", *(n for _, n in RATE_FIELDS)):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=None)
    args = parser.parse_args(argv)
    fault_args = {
        name: getattr(args, name)
        for name in FaultConfig.model_fields
        if getattr(args, name, None) is not None
    }
    responder: Responder = schema_echo_responder if args.echo_schema else fixed_text_responder
    if args.qa_mode:
        from clinsynth.testing.qa_responder import make_responder

        responder = make_responder(args.qa_mode)
    if args.responder:
        responder = load_responder(args.responder)
    server = StubServer(
        responder,
        latency_s=args.latency,
        faults=FaultConfig(**fault_args),
        seed=args.seed,
        reject_json_schema=args.reject_json_schema,
        reject_tools=args.reject_tools,
        port=args.port,
        keep_requests=False,
    )
    with server:
        print(f"stub server listening on {server.base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print(json.dumps(server.stats.as_dict()))


if __name__ == "__main__":
    main()
