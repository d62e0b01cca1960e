"""The chat agent's tools: search, generate (reading and updating the session), save.

``generate_items`` and ``save_items`` return LangGraph ``Command`` updates, so the session's
topic, difficulty target, measured difficulty and run directories live in the graph state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.prebuilt import ToolRuntime
from langgraph.types import Command
from pydantic import BaseModel, Field, field_validator

from clinsynth.apps.chat_session import escalate, narrow
from clinsynth.evaluators.difficulty import harder_not_measurable
from clinsynth.tools.models import (
    GenerateArgs,
    GenerateResult,
    SearchArgs,
    ToolError,
    check_difficulty,
)
from clinsynth.tools.toolkit import ClinsynthToolkit


class GenerateRequest(BaseModel):
    """What the chat model may ask of ``generate_items`` (extra keys: the injected runtime)."""

    topic: str | None = Field(
        default=None, description="a new topic; omit to keep the session's topic"
    )
    focus: str | None = Field(
        default=None, description="narrow the session's topic to this aspect, e.g. 'dosing'"
    )
    n: int = Field(default=5, ge=1, le=50, description="accepted items wanted")
    difficulty: str | None = Field(
        default=None,
        description="easy, medium, hard, a minimum like 0.7, or lo-hi; omit to keep the "
        "session's target",
    )
    harder: bool = Field(
        default=False,
        description="make the items harder than the difficulty measured on the last batch",
    )

    @field_validator("difficulty")
    @classmethod
    def _known_band(cls, value: str | None) -> str | None:
        return check_difficulty(value)


class SaveRequest(BaseModel):
    """What the chat model may ask of ``save_items``."""

    path: str | None = Field(
        default=None, description="where to write (default: the data dir's exports folder)"
    )
    format: Literal["jsonl", "datasets", "both"] = Field(
        default="jsonl", description="JSONL item records and/or a Hugging Face `datasets` folder"
    )
    scope: Literal["all", "last"] = Field(
        default="all", description="every batch of this conversation, or only the last one"
    )


class ChatItem(BaseModel):
    """An accepted item as the chat model sees it (no passage text, to keep context small)."""

    id: str
    question: str | None
    answer: str | None
    difficulty: float | None
    scores: dict[str, float]
    attempts: int


class ChatGeneration(BaseModel):
    """The ``generate_items`` tool result in the chat."""

    topic: str | None
    difficulty_target: str | None
    previous_measured_difficulty: float | None
    accepted: int
    rejected: int
    surplus: int = 0
    """Stopped because the target was reached first: not a rejection."""
    stop_reason: str
    measured_difficulty: dict[str, float | int] | None
    items: list[ChatItem]


def _thread_dir(toolkit: ClinsynthToolkit, config: RunnableConfig) -> Path:
    thread = str((config.get("configurable") or {}).get("thread_id") or "default")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in thread)[:80] or "default"
    return toolkit.data_dir / "chat" / safe


def _chat_view(result: GenerateResult, previous: float | None) -> ChatGeneration:
    items = [
        ChatItem(
            id=i.id,
            question=i.item.get("question"),
            answer=i.item.get("answer"),
            difficulty=i.difficulty,
            scores={k: round(v, 4) for k, v in i.scores.items()},
            attempts=i.attempts,
        )
        for i in result.items
    ]
    stats = result.measured_difficulty
    return ChatGeneration(
        topic=result.topic,
        difficulty_target=result.difficulty_target,
        previous_measured_difficulty=previous,
        accepted=result.accepted,
        rejected=result.rejected,
        surplus=result.surplus,
        stop_reason=result.stop_reason,
        measured_difficulty=stats.model_dump() if stats else None,
        items=items,
    )


def chat_tools(toolkit: ClinsynthToolkit) -> list[BaseTool]:
    """The chat agent's tools; ``generate_items`` and ``save_items`` read and update state."""

    def search_corpus(query: str, k: int = 4, collection: str = "corpus") -> str:
        try:
            result = toolkit.search(SearchArgs(query=query, k=k, collection=collection))
        except ToolError as exc:
            return f"error: {exc}"
        for p in result.passages:
            p.text = p.text[:400]
        return result.model_dump_json()

    async def generate_items(runtime: ToolRuntime, **kwargs: Any) -> Command[Any]:
        req = GenerateRequest(**kwargs)
        state = runtime.state
        topic = narrow(req.topic or state.get("topic"), req.focus)
        previous = state.get("last_difficulty")
        target: str | None
        if req.harder and (why := _harder_not_measurable(toolkit)) is not None:
            reply = json.dumps({"difficulty_measurable": False, "message": why})
            return Command(
                update={"messages": [ToolMessage(reply, tool_call_id=runtime.tool_call_id)]}
            )
        if req.harder:
            target = escalate(previous, state.get("difficulty_target"))
        else:
            target = req.difficulty or state.get("difficulty_target")
        runs = list(state.get("runs") or [])
        out_dir = _thread_dir(toolkit, runtime.config) / f"batch-{len(runs):03d}"
        writer = runtime.stream_writer

        def progress(p: Any) -> None:
            counts = {"accepted": p.accepted, "rejected": p.rejected, "surplus": p.surplus}
            writer({"progress": {**counts, "target": req.n}})

        args = GenerateArgs.model_validate(
            {
                "topic": topic,
                "n": req.n,
                "difficulty": target,
                "seed": len(runs),
                "out_dir": str(out_dir),
            }
        )
        try:
            result = await toolkit.generate(args, progress=progress, avoid=[Path(r) for r in runs])
        except ToolError as exc:
            return Command(update={"messages": [_error(runtime, exc)]})
        view = _chat_view(result, previous)
        update: dict[str, Any] = {
            "messages": [ToolMessage(view.model_dump_json(), tool_call_id=runtime.tool_call_id)],
            "topic": topic,
            "difficulty_target": target,
            "runs": [*runs, result.run_dir],
        }
        if result.measured_difficulty is not None:
            update["last_difficulty"] = result.measured_difficulty.mean
        return Command(update=update)

    def save_items(runtime: ToolRuntime, **kwargs: Any) -> Command[Any]:
        req = SaveRequest(**kwargs)
        runs = list(runtime.state.get("runs") or [])
        if req.scope == "last":
            runs = runs[-1:]
        try:
            saved = export_runs(
                [Path(r) for r in runs],
                Path(req.path) if req.path else _thread_dir(toolkit, runtime.config) / "export",
                req.format,
            )
        except ToolError as exc:
            return Command(update={"messages": [_error(runtime, exc)]})
        message = ToolMessage(json.dumps(saved), tool_call_id=runtime.tool_call_id)
        return Command(update={"messages": [message]})

    return [
        StructuredTool.from_function(
            func=search_corpus,
            name="search_corpus",
            description="Search the ingested clinical corpus; returns the closest passages.",
            args_schema=SearchArgs,
        ),
        StructuredTool.from_function(
            coroutine=generate_items,
            name="generate_items",
            description=(
                "Generate items through the critic loop on the session's topic; returns the "
                "accepted items with their measured scores."
            ),
            args_schema=GenerateRequest,
        ),
        StructuredTool.from_function(
            func=save_items,
            name="save_items",
            description="Export the conversation's accepted items (JSONL and/or datasets).",
            args_schema=SaveRequest,
        ),
    ]


def _harder_not_measurable(toolkit: ClinsynthToolkit) -> str | None:
    """Why the toolkit's qa generations cannot be made measurably harder, or None."""
    defaults = toolkit.run_defaults
    if defaults.get("recipe", "qa") != "qa":
        return None
    reader = (defaults.get("recipe_options") or {}).get("reader_path")
    return harder_not_measurable(reader is not None)


def _error(runtime: ToolRuntime, exc: Exception) -> ToolMessage:
    return ToolMessage(f"error: {exc}", tool_call_id=runtime.tool_call_id, status="error")


def export_runs(run_dirs: list[Path], target: Path, fmt: str) -> dict[str, Any]:
    """Write the accepted items of ``run_dirs`` as JSONL item records and/or a ``datasets``
    folder at ``target`` (a ``.jsonl`` path or a folder). Returns what was written."""
    from clinsynth.runtime.runfiles import RunFiles, read_records

    records = [rec for d in run_dirs for rec in read_records(RunFiles(d).accepted)]
    if not records:
        raise ToolError("nothing to save yet: no accepted items in this conversation")
    folder = target.parent if target.suffix == ".jsonl" else target
    folder.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Any] = {"items": len(records)}
    if fmt in ("jsonl", "both"):
        path = target if target.suffix == ".jsonl" else folder / "items.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(rec.model_dump_json() + "\n")
        saved["jsonl"] = str(path)
    if fmt in ("datasets", "both"):
        try:
            from datasets import Dataset
        except ImportError as exc:
            raise ToolError("saving as datasets needs: pip install 'clinsynth[train]'") from exc
        rows = [
            {
                "id": rec.id,
                **(rec.item or {}),
                "topic": rec.task.topic,
                "difficulty_target": rec.task.difficulty,
                "critic_scores": json.dumps(rec.provenance.critic_scores),
                "source_ids": rec.provenance.source_ids,
            }
            for rec in records
        ]
        path = folder / "dataset"
        from clinsynth.runtime.quiet import quiet_progress_bars

        with quiet_progress_bars():  # no "Saving the dataset" bar in the conversation
            Dataset.from_list(rows).save_to_disk(str(path))
        saved["datasets"] = str(path)
    return saved


__all__ = ["GenerateRequest", "SaveRequest", "chat_tools", "export_runs"]
