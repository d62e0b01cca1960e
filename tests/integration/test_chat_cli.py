"""``clinsynth chat`` driven through stdin with scripted input, against the stub server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clinsynth.testing.chat_responder import respond
from clinsynth.testing.stub_server import StubServer

CLI = [sys.executable, "-m", "clinsynth.cli", "chat"]
GENERATED = re.compile(
    r"generate_items: (\d+) accepted, \d+ rejected, \d+ surplus · target (\S+) · "
    r"measured difficulty ([0-9.]+|not graded) \(previous ([0-9.-]+)\)"
)


def env_for(base_url: str | None, store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINSYNTH_")}
    env.update(
        CLINSYNTH_API_KEY="test-key",
        CLINSYNTH_MODEL="stub-model",
        CLINSYNTH_EMBEDDER="hashing",
        CLINSYNTH_STORE=str(store),
        CLINSYNTH_MAX_RETRIES="1",
        CLINSYNTH_TIMEOUT_S="10",
    )
    if base_url:
        env["CLINSYNTH_BASE_URL"] = base_url
    return env


def chat(
    lines: list[str], thread: str, data_dir: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--thread", thread, "--data-dir", str(data_dir)],
        input="".join(line + "\n" for line in lines),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_chat_repl_streams_and_resumes_a_thread(demo_store_path: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with StubServer(respond) as stub:
        env = env_for(stub.base_url, demo_store_path)
        first = chat(
            ["give me 2 hard questions about anticoagulation in atrial fibrillation", "exit"],
            "t1",
            data,
            env,
        )
        assert first.returncode == 0, first.stderr
        assert "new conversation" in first.stderr
        assert "search_corpus: 4 passages" in first.stderr
        assert "agent> 2 accepted items on 'anticoagulation in atrial fibrillation'" in first.stdout
        m1 = GENERATED.search(first.stderr)
        # No reader: the lexical difficulty is recorded but not graded (issue 15).
        assert m1 and m1.group(1) == "2" and m1.group(2) == "hard"
        assert m1.group(3) == "not graded"

        # A new process, same thread, stdin closed without "exit" (Ctrl-D): "harder" is
        # answered honestly — difficulty cannot be measured without a reader — not faked.
        second = chat(["make them harder"], "t1", data, env)
        assert second.returncode == 0, second.stderr
        assert "resuming (" in second.stderr
        assert "generate_items: nothing generated" in second.stderr
        assert GENERATED.search(second.stderr) is None
        assert "cannot be measured" in second.stdout and "clinsynth train-reader" in second.stdout

        other = chat(["exit"], "t2", data, env)
        assert other.returncode == 0 and "new conversation" in other.stderr
    assert (data / "chat.sqlite").is_file()


@pytest.mark.slow
def test_chat_without_endpoint_is_a_one_line_error(tmp_path: Path) -> None:
    env = env_for(None, tmp_path / "store")
    res = chat(["hello"], "t1", tmp_path / "data", env)
    assert res.returncode == 2
    assert res.stderr.startswith("error:") and "CLINSYNTH_BASE_URL" in res.stderr
    assert "Traceback" not in res.stderr
