"""A local OpenAI-compatible chat completions server for tests and benchmarks.

Stdlib HTTP only. Replies come from a ``responder`` callable; faults (429, 500, timeouts,
truncated bodies, malformed JSON content, dropped connections, and replies that are no chat
completion: an HTML page, ``{}``, no choices, an oversized body) are injected from a seeded RNG
or from a fixed ``sequence``; prompts containing ``refuse_marker`` are answered 400. Run
standalone with ``python -m tests.support.stub_server``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

FaultKind = Literal[
    "429",
    "500",
    "timeout",
    "truncated",
    "malformed_json",
    "drop",
    "html",
    "not_json",
    "empty",
    "no_choices",
    "oversized",
]
Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]

_RATE_FIELDS: tuple[tuple[FaultKind, str], ...] = (
    ("429", "rate_429"),
    ("500", "rate_500"),
    ("timeout", "rate_timeout"),
    ("truncated", "rate_truncated"),
    ("malformed_json", "rate_malformed_json"),
    ("drop", "rate_drop"),
    ("html", "rate_html"),
    ("not_json", "rate_not_json"),
    ("empty", "rate_empty"),
    ("no_choices", "rate_no_choices"),
    ("oversized", "rate_oversized"),
)


class FaultConfig(BaseModel):
    """Fault injection: per-request probabilities, plus a fixed sequence applied first."""

    rate_429: float = Field(default=0.0, ge=0, le=1)
    rate_500: float = Field(default=0.0, ge=0, le=1)
    rate_timeout: float = Field(default=0.0, ge=0, le=1)
    rate_truncated: float = Field(default=0.0, ge=0, le=1)
    rate_malformed_json: float = Field(default=0.0, ge=0, le=1)
    rate_drop: float = Field(default=0.0, ge=0, le=1)
    rate_html: float = Field(default=0.0, ge=0, le=1)
    rate_not_json: float = Field(default=0.0, ge=0, le=1)
    rate_empty: float = Field(default=0.0, ge=0, le=1)
    rate_no_choices: float = Field(default=0.0, ge=0, le=1)
    rate_oversized: float = Field(default=0.0, ge=0, le=1)
    oversized_bytes: int = Field(default=20_000_000, ge=1)
    """Size of the body an ``oversized`` fault sends (a valid completion padded out)."""
    refuse_marker: str | None = None
    """Requests whose messages contain this text are answered 400 with ``refuse_message``
    (a hosted API's content filter or a bad parameter for one prompt), never a capability."""
    refuse_message: str = "the prompt was flagged by the content filter (stub)"
    retry_after_s: float = Field(default=0.05, ge=0)
    timeout_sleep_s: float = Field(default=2.0, ge=0)
    sequence: list[FaultKind | None] = Field(default_factory=list)
    """Faults for the first completion requests, in order (``None`` = no fault)."""

    @model_validator(mode="after")
    def _rates_sum_to_at_most_one(self) -> FaultConfig:
        total = sum(getattr(self, name) for _, name in _RATE_FIELDS)
        if total > 1:
            raise ValueError(f"fault rates sum to {total:.3f} > 1")
        return self


@dataclass
class Received:
    """One request as the server saw it."""

    at: float
    path: str
    body: dict[str, Any]
    fault: FaultKind | None = None


@dataclass
class StubStats:
    """Thread-safe counters of what the server did."""

    requests: int = 0
    completions: int = 0
    rejected: int = 0
    refused: int = 0
    """Requests answered 400 for their prompt (``refuse_marker``)."""
    in_flight: int = 0
    peak_in_flight: int = 0
    """Most chat-completion requests the server was handling at once."""
    faults: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: Literal["requests", "completions", "rejected", "refused"]) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def bump_fault(self, kind: FaultKind) -> None:
        with self._lock:
            self.faults[kind] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "completions": self.completions,
                "rejected": self.rejected,
                "refused": self.refused,
                "peak_in_flight": self.peak_in_flight,
                "faults": dict(self.faults),
            }


def _approx_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def requested_schema(body: dict[str, Any]) -> str | None:
    """The structured-output schema a request names (JSON schema or first tool), if any; a
    json_mode request names none, and each scripted model guesses it from its prompt."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return str(fmt["json_schema"]["name"])
    tools = body.get("tools") or []
    return str(tools[0]["function"]["name"]) if tools else None


def _forced_tool(body: dict[str, Any]) -> str | None:
    """Name of the tool the request forces (or its only tool), else None."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return choice.get("function", {}).get("name") or choice.get("name")
    if choice == "none" or not tools:
        return None
    if choice == "required" or len(tools) == 1:
        return tools[0].get("function", {}).get("name")
    return None


def _break_json(text: str, rng: random.Random) -> str:
    """Return ``text`` damaged the way LLMs damage JSON: cut off, brace lost, or garbage added."""
    variant = rng.randrange(3)
    if variant == 0:
        return text[: max(1, len(text) // 2)]
    if variant == 1:
        return text.rstrip()[:-1] if text.rstrip().endswith("}") else text + "{"
    return text + "\n}} <end of answer>"


def _error_body(message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


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
        handler = type("_BoundHandler", (_Handler,), {"stub": self})
        self._stopping.clear()
        self._httpd = _QuietServer(("127.0.0.1", self._port), handler)
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
            for kind, name in _RATE_FIELDS:
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


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connections when many clients start

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or hang up mid-answer are expected here; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    stub: StubServer
    _counted = False
    _arrived = 0.0
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, the body then waits for
    # the client's delayed ACK (~40 ms per request), which would swamp the configured latency.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    # --- plumbing -------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        payload: dict[str, Any] | str,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        cut: bool = False,
    ) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self._done()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._hang_up()
        else:
            self.wfile.write(data)

    def _done(self) -> None:
        """Wait until the configured latency has passed since the request arrived (the
        server's own work counts towards it), then stop counting the request as in flight:
        before its answer is written, as the client may send its next one on receipt."""
        if self._counted:
            self.stub.sleep(self.stub.latency_s - (time.monotonic() - self._arrived))
            self._counted = False
            self.stub.stats.leave()

    def _hang_up(self) -> None:
        self._done()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_json(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            self._send(400, _error_body(f"invalid JSON body: {exc}", "invalid_request_error"))
            return None
        if not isinstance(body, dict):
            self._send(
                400, _error_body("request body must be a JSON object", "invalid_request_error")
            )
            return None
        return body

    # --- endpoints ------------------------------------------------------------------------

    def do_GET(self) -> None:
        self.stub.stats.bump("requests")
        self.stub.record(Received(time.monotonic(), self.path, {}))
        if self.path.rstrip("/") == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "stub"}
                for m in self.stub.model_ids
            ]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, _error_body(f"no route GET {self.path}", "not_found_error"))

    def do_POST(self) -> None:
        self._arrived = time.monotonic()
        stub = self.stub
        stub.stats.bump("requests")
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(404, _error_body(f"no route POST {self.path}", "not_found_error"))
            return
        stub.stats.enter()
        self._counted = True
        try:
            self._complete(stub)
        finally:
            self._done()

    def _complete(self, stub: StubServer) -> None:
        body = self._read_json()
        if body is None:
            return
        entry = Received(time.monotonic(), self.path, body)
        stub.record(entry)
        rejection = self._capability_rejection(body)
        if rejection is not None:
            stub.stats.bump("rejected")
            self._send(400, _error_body(rejection[0], "invalid_request_error", rejection[1]))
            return
        marker = stub.faults.refuse_marker
        if marker and any(marker in _message_text(m) for m in body.get("messages") or []):
            stub.stats.bump("refused")
            self._send(400, _error_body(stub.faults.refuse_message, "invalid_request_error"))
            return
        fault = entry.fault = stub.draw_fault()
        if fault is not None:
            stub.stats.bump_fault(fault)
        if fault == "429":
            wait = stub.faults.retry_after_s
            headers = {"Retry-After": f"{wait:g}", "retry-after-ms": f"{wait * 1000:g}"}
            self._send(429, _error_body("rate limited (stub)", "rate_limit_error"), headers=headers)
            return
        if fault == "500":
            self._send(500, _error_body("internal error (stub)", "server_error"))
            return
        if fault == "drop":
            self._hang_up()
            return
        if fault == "timeout":
            stub.sleep(stub.faults.timeout_sleep_s)
        if fault in ("html", "not_json", "empty", "no_choices"):
            self._send_not_a_completion(fault)
            return
        try:
            reply = stub.responder(body)
        except Exception as exc:
            self._send(500, _error_body(f"responder failed: {exc!r}", "server_error"))
            return
        completion = self._completion(body, reply, malformed=fault == "malformed_json")
        if fault == "oversized":
            self._send_oversized(completion, stub.faults.oversized_bytes)
            return
        stub.stats.bump("completions")
        if body.get("stream"):
            self._send(200, self._as_sse(body, completion), content_type="text/event-stream")
        else:
            self._send(200, completion, cut=fault == "truncated")

    def _send_not_a_completion(self, fault: FaultKind) -> None:
        """A 200 reply that is no chat completion: a proxy's HTML page (labelled as HTML or as
        JSON), ``{}``, no choices."""
        page = "<!DOCTYPE html><html><body><h1>Welcome</h1>Sign in to continue.</body></html>"
        if fault == "html":
            self._send(200, page, content_type="text/html; charset=utf-8")
        elif fault == "not_json":
            self._send(200, page)
        elif fault == "empty":
            self._send(200, {})
        else:
            self._send(200, {"id": "chatcmpl-stub", "object": "chat.completion", "choices": []})

    def _send_oversized(self, completion: dict[str, Any], size: int) -> None:
        """``completion`` with its content padded with spaces to a body of ``size`` bytes,
        sent without a Content-Length (the body ends when the connection closes), in chunks."""
        message = completion["choices"][0]["message"]
        pad = max(size - len(json.dumps(completion)), 0)
        message["content"] = (message.get("content") or "") + " " * pad
        data = json.dumps(completion).encode()
        self._done()
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client hangs up once it has read enough
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            for start in range(0, len(data), 1 << 20):
                self.wfile.write(data[start : start + (1 << 20)])

    def _capability_rejection(self, body: dict[str, Any]) -> tuple[str, str] | None:
        fmt = body.get("response_format") or {}
        if self.stub.reject_json_schema and fmt.get("type") == "json_schema":
            return "response_format json_schema not supported", "response_format"
        if self.stub.reject_tools and body.get("tools"):
            return "tools not supported", "tools"
        return None

    def _completion(
        self, body: dict[str, Any], reply: str | dict[str, Any], *, malformed: bool
    ) -> dict[str, Any]:
        if isinstance(reply, str):
            content: str | None = reply
            tool_calls: list[dict[str, Any]] = []
            tool = _forced_tool(body)
            if tool is not None:
                tool_calls = [{"function": {"name": tool, "arguments": reply}}]
                content = None
        else:
            content = reply.get("content")
            tool_calls = list(reply.get("tool_calls") or [])
        calls = [self._normalise_call(i, c) for i, c in enumerate(tool_calls)]
        if malformed:
            rng = self.stub.derived_rng()
            if calls:
                calls[0]["function"]["arguments"] = _break_json(
                    calls[0]["function"]["arguments"], rng
                )
            elif content is not None:
                content = _break_json(content, rng)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        out_text = (content or "") + "".join(c["function"]["arguments"] for c in calls)
        prompt = "".join(_message_text(m) for m in body.get("messages") or [])
        usage = {
            "prompt_tokens": _approx_tokens(prompt),
            "completion_tokens": _approx_tokens(out_text),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {
            "id": f"chatcmpl-stub-{self.stub.stats.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.stub.model_ids[0],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls else "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }

    @staticmethod
    def _normalise_call(index: int, call: dict[str, Any]) -> dict[str, Any]:
        function = dict(call.get("function") or {"name": call["name"], "arguments": call["args"]})
        args = function.get("arguments", "{}")
        function["arguments"] = args if isinstance(args, str) else json.dumps(args)
        return {
            "id": call.get("id") or f"call_stub_{index}",
            "type": "function",
            "function": function,
        }

    @staticmethod
    def _as_sse(body: dict[str, Any], completion: dict[str, Any]) -> str:
        """Re-express a completion as chat.completion.chunk server-sent events."""
        choice = completion["choices"][0]
        message = choice["message"]
        base = {k: completion[k] for k in ("id", "created", "model")}
        base["object"] = "chat.completion.chunk"
        delta: dict[str, Any] = {"role": "assistant", "content": message["content"] or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {"index": i, **call} for i, call in enumerate(message["tool_calls"])
            ]
        chunks = [
            {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
            },
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": completion["usage"]})
        return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


# --- built-in responder -------------------------------------------------------------------


def _request_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or {}
    tools = body.get("tools") or []
    name = _forced_tool(body)
    for tool in tools:
        function = tool.get("function") or {}
        if function.get("name") == name:
            return function.get("parameters") or {}
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    return None


def _resolve_ref(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def minimal_instance(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """A small JSON value valid for ``schema`` (all declared properties filled in)."""
    root = schema if root is None else root
    if "$ref" in schema:
        return minimal_instance(_resolve_ref(schema["$ref"], root), root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return minimal_instance(options[0], root)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: minimal_instance(sub, root) for name, sub in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [minimal_instance(schema.get("items") or {}, root) for _ in range(count)]
    if kind in ("integer", "number"):
        value = 0
        if "minimum" in schema or "exclusiveMinimum" in schema:
            value = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        elif "maximum" in schema or "exclusiveMaximum" in schema:
            value = min(0, schema.get("maximum", schema.get("exclusiveMaximum", 0) - 1))
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "x" * max(1, int(schema.get("minLength", 1)))


def schema_echo_responder(body: dict[str, Any]) -> str:
    """Reply with a minimal instance of the request's JSON schema, or a short text."""
    schema = _request_schema(body)
    if schema is None:
        return "stub reply"
    return json.dumps(minimal_instance(schema))


def _fixed_text_responder(body: dict[str, Any]) -> str:
    return "stub reply"


def load_responder(spec: str) -> Responder:
    """Build a responder from ``MODULE:FACTORY[:ARG]`` (e.g. a recipe's scripted model)."""
    module, _, rest = spec.partition(":")
    factory_name, _, arg = rest.partition(":")
    if not module or not factory_name:
        raise SystemExit(f"--responder wants MODULE:FACTORY[:ARG], got {spec!r}")
    factory = getattr(importlib.import_module(module), factory_name)
    responder: Responder = factory(arg) if arg else factory()
    return responder


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
    for name in ("retry_after_s", "timeout_sleep_s", *(n for _, n in _RATE_FIELDS)):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=None)
    args = parser.parse_args(argv)
    fault_args = {
        name: getattr(args, name)
        for name in FaultConfig.model_fields
        if getattr(args, name, None) is not None
    }
    responder: Responder = schema_echo_responder if args.echo_schema else _fixed_text_responder
    if args.qa_mode:
        from tests.support.qa_responder import make_responder

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
