"""``clinsynth serve-mcp`` as a subprocess, called with the official MCP client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from clinsynth.testing.chat_responder import respond
from clinsynth.testing.stub_server import StubServer
from tests.integration.test_cli_generate import cli_env

REPO = Path(__file__).resolve().parents[2]
TOOLS = {"search_corpus", "generate_items", "critique_item", "correct_labels", "finetune_evaluate"}


def server_env(base_url: str, store: Path) -> dict[str, str]:
    return cli_env(base_url, store, retries=1)


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.slow
def test_stdio_server_tools(demo_store_path: Path, tmp_path: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def session_run(base_url: str) -> dict[str, Any]:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "clinsynth.cli", "serve-mcp", "--data-dir", str(tmp_path / "data")],
            env=server_env(base_url, demo_store_path),
            cwd=str(REPO),
        )
        out: dict[str, Any] = {}
        async with stdio_client(params) as streams, ClientSession(*streams) as session:
            await session.initialize()
            listed = await session.list_tools()
            out["tools"] = {t.name: t.input_schema for t in listed.tools}
            out["search"] = await session.call_tool(
                "search_corpus", {"query": "anticoagulation atrial fibrillation", "k": 3}
            )

            async def on_progress(
                progress: float, total: float | None, message: str | None
            ) -> None:
                seen.append((progress, total, message))

            out["generate"] = await session.call_tool(
                "generate_items",
                {"topic": "atrial fibrillation", "n": 3, "difficulty": "hard", "concurrency": 1},
                progress_callback=on_progress,
            )
            out["critique"] = await session.call_tool(
                "critique_item",
                {
                    "item": {"question": "What rhythm was found on the ECG?", "answer": "sinus"},
                    "context": "The ECG showed atrial fibrillation at 110 beats per minute.",
                },
            )
            out["bad"] = await session.call_tool("generate_items", {"difficulty": "extreme"})
        return out

    with StubServer(respond) as stub:
        out = anyio.run(session_run, stub.base_url)

    assert set(out["tools"]) == TOOLS
    schema = out["tools"]["generate_items"]["properties"]
    assert schema["n"]["minimum"] == 1 and "description" in schema["difficulty"]

    assert not out["search"].is_error
    passages = json.loads(text_of(out["search"]))["passages"]
    assert len(passages) == 3 and "atrial_fibrillation" in passages[0]["id"]

    assert not out["generate"].is_error, text_of(out["generate"])
    generated = json.loads(text_of(out["generate"]))
    assert generated["accepted"] == len(generated["items"]) >= 1
    # No reader: difficulty is recorded among the scores but not graded (None), see issue 15.
    assert all(item["difficulty"] is None for item in generated["items"])
    assert all("difficulty" in item["scores"] for item in generated["items"])
    assert Path(generated["run_dir"], "accepted.jsonl").is_file()
    # One progress notification per finished candidate, ending at the accepted count.
    assert seen and seen[-1][0] == generated["accepted"] and seen[-1][1] == 3
    assert len(seen) == generated["candidates"]
    # Surplus items (stopped at the target) are counted apart, never as rejections.
    counts = generated["accepted"] + generated["rejected"] + generated["surplus"]
    assert counts == generated["candidates"]
    assert seen[-1][2] == (
        f"{generated['accepted']} accepted, {generated['rejected']} rejected, "
        f"{generated['surplus']} surplus"
    )

    critique = json.loads(text_of(out["critique"]))
    assert critique["verdict"] != "accept"
    assert any(r.startswith("answer_validity") for r in critique["reasons"])

    assert out["bad"].is_error and "difficulty" in text_of(out["bad"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a TCP listener on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # 0A = LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(host)[::-1]))
    return found


@pytest.mark.slow
def test_http_server_binds_loopback(demo_store_path: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = server_env("http://127.0.0.1:9/v1", demo_store_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "clinsynth.cli", "serve-mcp", "--http", "--port", str(port)],
        env=env,
        cwd=str(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.3)

        async def listed() -> set[str]:
            url = f"http://127.0.0.1:{port}/mcp"
            async with streamable_http_client(url) as streams, ClientSession(*streams) as session:
                await session.initialize()
                return {t.name for t in (await session.list_tools()).tools}

        assert anyio.run(listed) == TOOLS
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
