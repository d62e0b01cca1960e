"""MCP server exposing the clinsynth tools (the ``mcp`` SDK's ``MCPServer``, formerly FastMCP).

The tools are those of :func:`clinsynth.tools.as_tools`, with the same pydantic argument
models flattened into each tool's input schema. ``generate_items`` sends MCP progress
notifications (accepted of n) while it runs, when the client asks for progress.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError as McpToolError
from pydantic import BaseModel, Field, ValidationError

from clinsynth.config import one_line
from clinsynth.tools.adapters import TOOL_DESCRIPTIONS
from clinsynth.tools.models import (
    CorrectLabelsArgs,
    CritiqueArgs,
    FinetuneArgs,
    GenerateArgs,
    SearchArgs,
    ToolError,
)
from clinsynth.tools.toolkit import ClinsynthToolkit

ArgsT = TypeVar("ArgsT", bound=BaseModel)

INSTRUCTIONS = (
    "clinsynth makes synthetic clinical training data. search_corpus shows source passages; "
    "generate_items runs the agent graph with a critic loop and returns accepted items with "
    "measured scores (it can take minutes: it reports progress); critique_item checks one "
    "item; correct_labels flags suspect labels; finetune_evaluate trains and scores a BERT "
    "model."
)


def _with_model_signature(
    fn: Callable[..., Awaitable[str]], model: type[BaseModel], name: str
) -> Callable[..., Awaitable[str]]:
    """Give ``fn(ctx, **kwargs)`` a signature listing ``model``'s fields, so the server
    publishes them (with types, defaults and descriptions) as the tool's input schema."""
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for field_name, field in model.model_fields.items():
        default = (
            inspect.Parameter.empty
            if field.is_required()
            else field.get_default(call_default_factory=True)
        )
        annotated: Any = Annotated  # subscripted at run time with the field's own type
        hint = annotated[(field.annotation, *field.metadata, Field(description=field.description))]
        params.append(
            inspect.Parameter(
                field_name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint
            )
        )
    fn.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    fn.__name__ = name
    return fn


def _parse(model: type[ArgsT], kwargs: dict[str, Any]) -> ArgsT:
    """Validate tool arguments; a bad value becomes a tool error the client can read."""
    try:
        return model(**kwargs)
    except ValidationError as exc:
        raise McpToolError(f"bad arguments: {one_line(exc)}") from exc


def build_server(toolkit: ClinsynthToolkit) -> MCPServer[Any]:
    """An MCP server whose tools run on ``toolkit``."""
    try:
        version = metadata.version("clinsynth")
    except metadata.PackageNotFoundError:
        version = "0"
    server: MCPServer[Any] = MCPServer("clinsynth", instructions=INSTRUCTIONS, version=version)

    async def generate(ctx: Context, **kwargs: Any) -> str:
        args = _parse(GenerateArgs, kwargs)

        async def progress(p: Any) -> None:
            await ctx.report_progress(
                p.accepted,
                p.target,
                f"{p.accepted} accepted, {p.rejected} rejected, {p.surplus} surplus",
            )

        try:
            result = await toolkit.generate(args, progress=progress)
        except ToolError as exc:
            raise McpToolError(str(exc)) from exc
        return result.model_dump_json()

    def threaded(
        call: Callable[[Any], BaseModel], model: type[BaseModel]
    ) -> Callable[..., Awaitable[str]]:
        async def run(ctx: Context, **kwargs: Any) -> str:
            args = _parse(model, kwargs)
            try:
                result = await asyncio.to_thread(call, args)
            except ToolError as exc:
                raise McpToolError(str(exc)) from exc
            return result.model_dump_json()

        return run

    tools: dict[str, tuple[Callable[..., Awaitable[str]], type[BaseModel]]] = {
        "search_corpus": (threaded(toolkit.search, SearchArgs), SearchArgs),
        "generate_items": (generate, GenerateArgs),
        "critique_item": (threaded(toolkit.critique, CritiqueArgs), CritiqueArgs),
        "correct_labels": (threaded(toolkit.correct_labels, CorrectLabelsArgs), CorrectLabelsArgs),
        "finetune_evaluate": (threaded(toolkit.finetune, FinetuneArgs), FinetuneArgs),
    }
    for name, (fn, model) in tools.items():
        server.add_tool(
            _with_model_signature(fn, model, name),
            name=name,
            description=TOOL_DESCRIPTIONS[name],
            structured_output=False,
        )
    return server
