"""``clinsynth chat``: a terminal conversation with the chat agent, persisted per thread id."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from clinsynth.cli_support import (
    EmbedderOpt,
    StoreOpt,
    console,
    guard,
    phase,
    settings_from_env,
)
from clinsynth.runtime import aio

EXIT_WORDS = {"exit", "quit", ":q"}


def register(app: typer.Typer) -> None:
    """Add the ``chat`` command."""

    @app.command()
    def chat(
        thread: Annotated[
            str, typer.Option("--thread", help="conversation id; reuse it to continue")
        ] = "default",
        data_dir: Annotated[
            Path, typer.Option("--data-dir", help="conversations (chat.sqlite) and their runs")
        ] = Path(".clinsynth"),
        store: StoreOpt = None,
        embedder: EmbedderOpt = None,
        base_url: Annotated[
            str | None, typer.Option(help="OpenAI-compatible base URL [env CLINSYNTH_BASE_URL]")
        ] = None,
        model: Annotated[
            str | None, typer.Option(help="model name at the endpoint [env CLINSYNTH_MODEL]")
        ] = None,
        reader: Annotated[
            Path | None,
            typer.Option(
                "--reader",
                help="saved QA reader that measures difficulty (clinsynth train-reader makes "
                "one); without it difficulty is not graded and 'harder' cannot be honoured",
            ),
        ] = None,
    ) -> None:
        """Talk to the agent: "give me 5 hard questions about …", "make them harder",
        "more about dosing", "save them". Type exit (or Ctrl-D) to leave."""
        guard(_chat, thread, data_dir, store, embedder, base_url, model, reader)


def _chat(
    thread: str,
    data_dir: Path,
    store: Path | None,
    embedder: str | None,
    base_url: str | None,
    model: str | None,
    reader: Path | None = None,
) -> None:
    with phase("loading libraries (LangGraph, the chat agent)", show=console.is_terminal):
        from clinsynth.apps.chat import chat_model
        from clinsynth.tools.toolkit import ClinsynthToolkit
    from clinsynth.cli_support import UserError

    update = {k: v for k, v in (("base_url", base_url), ("model", model)) if v is not None}
    settings = settings_from_env(store, embedder).model_copy(update=update)
    defaults: dict[str, Any] = {}
    if reader is not None:
        if not reader.is_dir():
            raise UserError(f"--reader {reader} is not a directory (clinsynth train-reader)")
        defaults["recipe_options"] = {"reader_path": str(reader)}
    toolkit = ClinsynthToolkit(settings, data_dir=data_dir, run_defaults=defaults)
    llm = chat_model(settings)  # fails here, with one line, when no endpoint is configured
    aio.run(_session(toolkit, llm, thread))


def _read(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


async def _session(toolkit: Any, llm: Any, thread: str) -> None:
    from clinsynth.apps.chat import open_chat

    config: Any = {"configurable": {"thread_id": thread}}
    async with open_chat(toolkit, llm) as app:
        snapshot = await app.aget_state(config)
        values = snapshot.values or {}
        earlier = len(values.get("messages") or [])
        if earlier:
            console.print(
                f"thread [bold]{escape(thread)}[/]: resuming ({earlier} messages; topic "
                f"{escape(str(values.get('topic') or '-'))}, last measured difficulty "
                f"{_fmt(values.get('last_difficulty'))}) · exit to leave",
                highlight=False,
            )
        else:
            console.print(f"thread [bold]{escape(thread)}[/]: new conversation · exit to leave")
        while True:
            line = await asyncio.to_thread(_read, "you> ")
            if line is None or line.strip().lower() in EXIT_WORDS:
                break
            if line.strip():
                await _turn(app, line.strip(), config)
    sys.stdout.write("\n")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


class _ProgressLine:
    """A rich progress bar shown while a tool generates items."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None

    def update(self, data: dict[str, Any]) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        if self.bar is None:
            self.bar = Progress(
                TextColumn("generating"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("rejected {task.fields[rejected]}"),
                console=console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("", total=data["target"], rejected=0)
        self.bar.update(self.task, completed=data["accepted"], rejected=data["rejected"])

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _tool_line(message: Any) -> str:
    """One line on what a tool did, from its result."""
    text = str(message.content)
    if text.startswith("error:"):
        return f"{message.name}: {text}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return f"{message.name}: done"
    if message.name == "generate_items":
        if data.get("difficulty_measurable") is False:
            return "generate_items: nothing generated · difficulty cannot be measured (no reader)"
        stats = data.get("measured_difficulty") or {}
        measured = _fmt(stats["mean"]) if stats else "not graded"
        return (
            f"generate_items: {data['accepted']} accepted, {data['rejected']} rejected, "
            f"{data.get('surplus', 0)} surplus · target "
            f"{data['difficulty_target'] or 'any'} · measured difficulty "
            f"{measured} (previous {_fmt(data['previous_measured_difficulty'])})"
        )
    if message.name == "search_corpus":
        return f"search_corpus: {len(data.get('passages') or [])} passages"
    if message.name == "save_items":
        where = ", ".join(str(data[k]) for k in ("jsonl", "datasets") if k in data)
        return f"save_items: {data.get('items')} items → {where}"
    return f"{message.name}: done"


async def _turn(app: Any, text: str, config: Any) -> None:
    """Send one user message; stream the agent's words and report each tool's outcome."""
    from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage

    bar = _ProgressLine()
    streamed = False
    try:
        async for mode, chunk in app.astream(
            {"messages": [HumanMessage(text)]},
            config,
            stream_mode=["messages", "updates", "custom"],
        ):
            if mode == "messages":
                message, meta = chunk
                if (
                    meta.get("langgraph_node") == "agent"
                    and isinstance(message, AIMessageChunk)
                    and isinstance(message.content, str)
                    and message.content
                ):
                    if not streamed:
                        sys.stdout.write("agent> ")
                        streamed = True
                    sys.stdout.write(message.content)
                    sys.stdout.flush()
            elif mode == "custom" and isinstance(chunk, dict) and "progress" in chunk:
                bar.update(chunk["progress"])
            elif mode == "updates" and "tools" in (chunk or {}):
                bar.stop()
                for message in (chunk["tools"] or {}).get("messages") or []:
                    if isinstance(message, ToolMessage):
                        console.print(f"[dim]· {escape(_tool_line(message))}[/]", highlight=False)
    except Exception as exc:  # the endpoint failed mid-turn: keep the conversation going
        bar.stop()
        console.print(
            f"[bold red]error:[/] {escape(f'{type(exc).__name__}: {exc}')}", highlight=False
        )
        return
    finally:
        bar.stop()
    if streamed:
        sys.stdout.write("\n")
        sys.stdout.flush()
