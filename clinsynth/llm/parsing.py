"""Reading a model's reply: its text, a JSON object recovered from it, why it fails a schema."""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import ValidationError


def content_text(message: BaseMessage) -> str:
    """The text of a message, its text parts joined."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(
        p if isinstance(p, str) else str(p.get("text", "")) for p in content if p is not None
    )


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _balanced_object(text: str, start: int) -> str | None:
    """The ``{...}`` starting at ``start``, matched with string awareness; None if unclosed."""
    depth = 0
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def extract_json(text: str) -> Any:
    """Parse a JSON object out of LLM text: code fences, surrounding prose, trailing commas.

    Raises ``ValueError`` when no complete JSON object can be recovered.
    """
    fenced = _FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip()
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        pass
    start = body.find("{")
    if start < 0:
        raise ValueError("no JSON object in the reply")
    candidate = _balanced_object(body, start)
    if candidate is None:
        raise ValueError("the JSON object in the reply is cut off (unbalanced braces)")
    for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError as exc:
            error = exc
    raise ValueError(f"invalid JSON: {error.msg} at char {error.pos}")


def validation_summary(exc: ValidationError) -> str:
    """The first five validation errors on one line."""
    parts = [
        f"{'.'.join(str(x) for x in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
    ]
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(parts) + more
