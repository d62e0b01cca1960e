"""The stub server's HTTP handler: routes, fault injection, completions and streaming."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from clinsynth.testing.stub_faults import FaultKind, Received
from clinsynth.testing.stub_replies import (
    approx_tokens,
    break_json,
    error_body,
    forced_tool,
    message_text,
)

if TYPE_CHECKING:
    from clinsynth.testing.stub_server import StubServer


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connections when many clients start

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or hang up mid-answer are expected here; stay quiet."""


class Handler(BaseHTTPRequestHandler):
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
            self._send(400, error_body(f"invalid JSON body: {exc}", "invalid_request_error"))
            return None
        if not isinstance(body, dict):
            self._send(
                400, error_body("request body must be a JSON object", "invalid_request_error")
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
            self._send(404, error_body(f"no route GET {self.path}", "not_found_error"))

    def do_POST(self) -> None:
        self._arrived = time.monotonic()
        stub = self.stub
        stub.stats.bump("requests")
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(404, error_body(f"no route POST {self.path}", "not_found_error"))
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
            self._send(400, error_body(rejection[0], "invalid_request_error", rejection[1]))
            return
        marker = stub.faults.refuse_marker
        if marker and any(marker in message_text(m) for m in body.get("messages") or []):
            stub.stats.bump("refused")
            self._send(400, error_body(stub.faults.refuse_message, "invalid_request_error"))
            return
        fault = entry.fault = stub.draw_fault()
        if fault is not None:
            stub.stats.bump_fault(fault)
        if fault == "429":
            wait = stub.faults.retry_after_s
            headers = {"Retry-After": f"{wait:g}", "retry-after-ms": f"{wait * 1000:g}"}
            self._send(429, error_body("rate limited (stub)", "rate_limit_error"), headers=headers)
            return
        if fault == "500":
            self._send(500, error_body("internal error (stub)", "server_error"))
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
            self._send(500, error_body(f"responder failed: {exc!r}", "server_error"))
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
            tool = forced_tool(body)
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
                calls[0]["function"]["arguments"] = break_json(
                    calls[0]["function"]["arguments"], rng
                )
            elif content is not None:
                content = break_json(content, rng)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        out_text = (content or "") + "".join(c["function"]["arguments"] for c in calls)
        prompt = "".join(message_text(m) for m in body.get("messages") or [])
        usage = {
            "prompt_tokens": approx_tokens(prompt),
            "completion_tokens": approx_tokens(out_text),
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
