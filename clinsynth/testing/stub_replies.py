"""Reading a chat request and building replies for the stub server: schemas, usage, built-in
responders."""

from __future__ import annotations

import importlib
import json
import random
from typing import Any

from clinsynth.testing.stub_faults import Responder


def approx_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def message_text(message: dict[str, Any]) -> str:
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


def forced_tool(body: dict[str, Any]) -> str | None:
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


def break_json(text: str, rng: random.Random) -> str:
    """Return ``text`` damaged the way LLMs damage JSON: cut off, brace lost, or garbage added."""
    variant = rng.randrange(3)
    if variant == 0:
        return text[: max(1, len(text) // 2)]
    if variant == 1:
        return text.rstrip()[:-1] if text.rstrip().endswith("}") else text + "{"
    return text + "\n}} <end of answer>"


def error_body(message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def _request_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or {}
    tools = body.get("tools") or []
    name = forced_tool(body)
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


def fixed_text_responder(body: dict[str, Any]) -> str:
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
