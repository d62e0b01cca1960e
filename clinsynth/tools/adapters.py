"""The toolkit as LangChain tools: ``StructuredTool`` wrappers with pydantic argument schemas.

A :class:`~clinsynth.tools.models.ToolError` becomes LangChain's ``ToolException``, so the
model reads the one-line ``error: …`` text instead of the run failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from clinsynth.config import Settings, one_line
from clinsynth.runtime import aio
from clinsynth.tools.models import (
    CorrectLabelsArgs,
    CritiqueArgs,
    FinetuneArgs,
    GenerateArgs,
    SearchArgs,
    ToolError,
)
from clinsynth.tools.toolkit import DEFAULT_DATA_DIR, ClinsynthToolkit, ProgressFn

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

TOOL_DESCRIPTIONS: dict[str, str] = {
    "search_corpus": "Search the ingested clinical corpus; returns the most similar passages.",
    "generate_items": (
        "Generate synthetic training items through the agent graph (retrieve, reason, "
        "generate, critic loop); returns the accepted items with their measured scores."
    ),
    "critique_item": (
        "Run the critic's measurable checks (overlap, answer validity, difficulty, privacy, "
        "injection) on one item; returns the verdict and the reasons."
    ),
    "correct_labels": (
        "Find texts whose given label a cross-validated classifier disagrees with; flags "
        "or fixes them per the policy."
    ),
    "finetune_evaluate": (
        "Fine-tune a BERT model (classification or extractive QA) on a training file and "
        "report evaluation metrics over seeds (mean ± sd)."
    ),
}


def _tool_exception(exc: ToolError) -> Exception:
    """LangChain's marker for an error the model should read (``handle_tool_error``)."""
    from langchain_core.tools import ToolException

    return ToolException(str(exc))


def _tool_error_text(exc: Exception) -> str:
    return f"error: {exc}"


def _validation_error_text(exc: Any) -> str:
    from pydantic import ValidationError

    return f"error: bad arguments: {one_line(exc) if isinstance(exc, ValidationError) else exc}"


def _sync(toolkit_call: Callable[[Any], BaseModel], model: type[BaseModel]) -> Callable[..., str]:
    def run(**kwargs: Any) -> str:
        try:
            return toolkit_call(model(**kwargs)).model_dump_json()
        except ToolError as exc:
            raise _tool_exception(exc) from exc

    return run


def _async(
    toolkit_call: Callable[[Any], BaseModel], model: type[BaseModel]
) -> Callable[..., Awaitable[str]]:
    async def run(**kwargs: Any) -> str:
        try:
            result = await asyncio.to_thread(toolkit_call, model(**kwargs))
        except ToolError as exc:
            raise _tool_exception(exc) from exc
        return result.model_dump_json()

    return run


def as_tools(
    toolkit: ClinsynthToolkit | None = None,
    *,
    settings: Settings | None = None,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    include: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> list[BaseTool]:
    """LangChain tools over the clinsynth core, with pydantic argument schemas.

    Each returns its result model as JSON text; user-fixable failures (empty store, bad
    difficulty, unreachable endpoint) come back to the model as the tool's error message.
    ``include`` picks tools by name (default: all of :data:`TOOL_DESCRIPTIONS`);
    ``progress`` is called as generation advances.
    """
    from langchain_core.tools import StructuredTool

    tk = toolkit or ClinsynthToolkit(settings, data_dir=data_dir)

    async def generate_async(**kwargs: Any) -> str:
        try:
            result = await tk.generate(GenerateArgs(**kwargs), progress=progress)
        except ToolError as exc:
            raise _tool_exception(exc) from exc
        return result.model_dump_json()

    def generate_sync(**kwargs: Any) -> str:
        return aio.run(generate_async(**kwargs))

    specs: dict[str, tuple[type[BaseModel], Callable[..., Any], Callable[..., Any]]] = {
        "search_corpus": (SearchArgs, _sync(tk.search, SearchArgs), _async(tk.search, SearchArgs)),
        "generate_items": (GenerateArgs, generate_sync, generate_async),
        "critique_item": (
            CritiqueArgs,
            _sync(tk.critique, CritiqueArgs),
            _async(tk.critique, CritiqueArgs),
        ),
        "correct_labels": (
            CorrectLabelsArgs,
            _sync(tk.correct_labels, CorrectLabelsArgs),
            _async(tk.correct_labels, CorrectLabelsArgs),
        ),
        "finetune_evaluate": (
            FinetuneArgs,
            _sync(tk.finetune, FinetuneArgs),
            _async(tk.finetune, FinetuneArgs),
        ),
    }
    names = list(include) if include is not None else list(specs)
    unknown = sorted(set(names) - set(specs))
    if unknown:
        raise ValueError(f"unknown tool(s) {unknown}; available: {sorted(specs)}")
    return [
        StructuredTool.from_function(
            func=specs[name][1],
            coroutine=specs[name][2],
            name=name,
            description=TOOL_DESCRIPTIONS[name],
            args_schema=specs[name][0],
            handle_tool_error=_tool_error_text,
            handle_validation_error=_validation_error_text,
        )
        for name in names
    ]


__all__ = ["TOOL_DESCRIPTIONS", "as_tools"]
