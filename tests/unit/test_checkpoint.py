"""The run checkpointer: grouped commits keep the graph's view whole and lose nothing on close."""

from __future__ import annotations

import asyncio
import operator
import sqlite3
from pathlib import Path
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

from clinsynth.runtime.checkpoint import open_checkpointer


class Counter(TypedDict):
    steps: Annotated[list[int], operator.add]


def graph_of(saver: object) -> object:
    builder = StateGraph(Counter)
    builder.add_node("a", lambda s: {"steps": [1]})
    builder.add_node("b", lambda s: {"steps": [2]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder.compile(checkpointer=saver)  # type: ignore[arg-type]


def committed_threads(path: Path) -> int:
    with sqlite3.connect(path) as other:  # another connection sees committed rows only
        return int(other.execute("SELECT COUNT(DISTINCT thread_id) FROM checkpoints").fetchone()[0])


def test_grouped_commits_are_visible_to_the_run_and_committed_on_close(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"

    async def run() -> tuple[int, list[int]]:
        async with open_checkpointer(path, commit_interval_s=3600) as saver:
            graph = graph_of(saver)
            config = {"configurable": {"thread_id": "t1"}}
            await graph.ainvoke({"steps": []}, config)  # type: ignore[attr-defined]
            seen_elsewhere = committed_threads(path)
            state = await graph.aget_state(config)  # type: ignore[attr-defined]
            return seen_elsewhere, state.values["steps"]

    seen_elsewhere, steps = asyncio.run(run())
    assert steps == [1, 2]  # the saver's own connection reads its uncommitted steps
    assert seen_elsewhere == 0  # within the interval nothing was committed yet
    assert committed_threads(path) == 1  # closing committed the rest


def test_default_commits_every_write(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"

    async def run() -> int:
        async with open_checkpointer(path) as saver:
            await graph_of(saver).ainvoke(  # type: ignore[attr-defined]
                {"steps": []}, {"configurable": {"thread_id": "t1"}}
            )
            return committed_threads(path)

    assert asyncio.run(run()) == 1


def test_garbage_database_is_a_run_file_error_naming_repair(tmp_path: Path) -> None:
    import pytest

    from clinsynth.runtime.runfiles import RunFileError

    (tmp_path / "run.json").write_text("{}")
    path = tmp_path / "checkpoints.sqlite"
    path.write_bytes(b"this is not a database" * 100)

    async def open_it() -> None:
        async with open_checkpointer(path):
            pass

    with pytest.raises(RunFileError) as err:
        asyncio.run(open_it())
    assert str(err.value).startswith(f"{path} is not a readable checkpoint database (")
    assert str(err.value).endswith(f"run 'clinsynth repair {tmp_path}'")
