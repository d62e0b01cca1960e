"""The LLM layer's errors, and the one classification of what an endpoint failure means.

``translate`` turns what a chat model raised into one of these classes:

- Fatal for the run (``FATAL_ENDPOINT_ERRORS``, ``is_fatal``): ``LLMEndpointError`` and its
  subclasses. The endpoint is unreachable, times out or keeps answering 5xx after the SDK's
  retries, rejects the key (401/403), does not know the URL or model (404), rejects every
  structured-output method, or refuses each of its first requests without answering one; a reply
  that is no OpenAI chat completion (an HTML page, ``{}``, no choices, an oversized body) is an
  ``LLMProtocolError``; an in-process model that cannot load or run is a ``LocalModelError``.
- Rejects one item: ``LLMRequestError``. HTTP 400, 413 or 422 for one prompt (a content filter,
  an over-long prompt, a parameter the server dislikes for that prompt) or a context overflow is
  no verdict on the endpoint; the batch runner rejects that item with the server's message.
- Model-output problems (no JSON, schema-invalid JSON) are never raised: ``StructuredLLM``
  returns them in ``StructuredResult.error``.
- ``Unsupported`` is evidence that a structured-output method is unsupported: only an explicit
  capability error (a message about response_format, json_schema, tools, grammars or something
  "not supported", or an error ``param`` naming one of them). ``StructuredLLM`` accepts it only
  for a method that has never worked, and otherwise raises it as an ``LLMRequestError``.
- ``LLMConfigError``: a configuration is unusable, found before any request.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.exceptions import ContextOverflowError


class LLMError(Exception):
    """Base class of the LLM layer's errors."""


class LLMConfigError(LLMError, ValueError):
    """An LLM configuration is unusable."""


class LLMEndpointError(LLMError):
    """The endpoint failed after the SDK's retries (unreachable, auth, persistent 5xx, ...)."""


class LocalModelError(LLMEndpointError):
    """The in-process local model cannot be loaded or run."""


class LLMProtocolError(LLMEndpointError):
    """The endpoint answered with something that is not an OpenAI chat completion."""


class LLMRequestError(LLMError):
    """The endpoint refused one request for its content; other requests may well succeed."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"endpoint refused this request ({detail})")


class Unsupported(Exception):
    """The endpoint said it does not support a structured-output method."""


FATAL_ENDPOINT_ERRORS: tuple[type[BaseException], ...] = (LLMEndpointError,)
"""The LLM errors that stop a run instead of rejecting one item (see the module docstring)."""


def is_fatal(exc: BaseException) -> bool:
    """Whether ``exc`` says the endpoint cannot serve this run, so the run must stop."""
    return isinstance(exc, FATAL_ENDPOINT_ERRORS)


_CAPABILITY_WORDS = (
    "response_format",
    "json_schema",
    "grammar",
    "tool",
    "not supported",
    "unsupported",
)
_CAPABILITY_PARAMS = ("response_format", "tools", "tool_choice")
_REQUEST_STATUSES = (400, 413, 422)
_MESSAGE_CHARS = 300


def one_line(text: str, limit: int = _MESSAGE_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_capability_error(exc: Any) -> bool:
    """Whether an OpenAI SDK status error names a structured-output capability."""
    if getattr(exc, "param", None) in _CAPABILITY_PARAMS:
        return True
    message = _server_message(exc).lower()
    return any(word in message for word in _CAPABILITY_WORDS)


def translate(exc: BaseException, where: str) -> BaseException | None:
    """This layer's error for an exception a chat model raised; None: not an endpoint failure
    (re-raise it as is). ``Unsupported`` is only a candidate verdict: the caller decides."""
    import openai

    if isinstance(exc, LLMError):
        return None
    if isinstance(exc, ContextOverflowError):
        return LLMRequestError("the prompt exceeds the model's context window")
    if isinstance(exc, NotImplementedError):  # e.g. a model without tool support
        return Unsupported(str(exc) or type(exc).__name__)
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMProtocolError(f"{where}: the reply is not an OpenAI chat completion ({exc})")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, where)
    if isinstance(exc, openai.APITimeoutError):
        return LLMEndpointError(f"{where}: request timed out after retries")
    if isinstance(exc, openai.APIConnectionError):
        return LLMEndpointError(f"{where}: cannot connect ({cause(exc)})")
    if isinstance(exc, json.JSONDecodeError):  # a JSON content type over a body that is not
        return LLMProtocolError(f"{where}: the reply is not JSON ({exc})")
    return None


def _server_message(exc: Any) -> str:
    """The server's own error message (the SDK prefixes its message with the status)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return one_line(body["message"])
    return one_line(re.sub(r"^Error code: \d+ - ", "", str(getattr(exc, "message", ""))))


def _status_error(exc: Any, where: str) -> BaseException:
    code, message = exc.status_code, _server_message(exc)
    detail = f"HTTP {code}: {message}"
    if code in (401, 403):
        return LLMEndpointError(f"{where}: API key rejected (HTTP {code}); check api_key")
    if (code in (*_REQUEST_STATUSES, 404) or code >= 500) and is_capability_error(exc):
        return Unsupported(detail)
    if code in _REQUEST_STATUSES:
        return LLMRequestError(detail)
    if code == 404:
        return LLMEndpointError(f"{where}: {detail}; check base_url and model")
    if code >= 500:
        return LLMEndpointError(f"{where}: server error after retries ({detail})")
    return LLMEndpointError(f"{where}: HTTP {code} after retries: {message}")


def completion_problem(response: Any) -> str | None:
    """Why a parsed reply is not an OpenAI chat completion; None when it is one."""
    if isinstance(response, str | bytes):
        text = response if isinstance(response, str) else response.decode(errors="replace")
        return f"got a text body: {one_line(text, 80)!r}"
    get = response.get if isinstance(response, dict) else lambda key: getattr(response, key, None)
    choices = get("choices")
    if not isinstance(choices, list) or not choices:
        return "no choices" if isinstance(choices, list) else "no 'choices' list"
    first = choices[0]
    message = first.get("message") if isinstance(first, dict) else getattr(first, "message", None)
    return None if message is not None else "the first choice has no message"


def cause(exc: BaseException) -> str:
    """First line of the innermost cause (e.g. "[Errno 111] Connection refused")."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
