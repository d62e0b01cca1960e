"""Every user mistake ends in one ``error:`` line, never a traceback (CLI as a subprocess).

Corrupt run files get a line that names the file and ``clinsynth repair RUN``; repair moves
the unreadable data aside and the run is readable (and resumable) again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.store import VectorStore
from clinsynth.testing.qa_responder import make_responder
from clinsynth.testing.stub_server import StubServer
from tests.integration.test_cli_generate import cli_env, generate_args, rows, run_cli


def no_endpoint(tmp_path: Path) -> dict[str, str]:
    """The CLI environment for commands that never reach an endpoint."""
    return cli_env("http://127.0.0.1:9", tmp_path / "store")


def one_error(res: object) -> str:
    """The one ``error:`` line, the last on stderr (``generate`` announces its run first)."""
    stderr = res.stderr  # type: ignore[attr-defined]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert [line for line in lines if line.startswith("error")] == lines[-1:], stderr
    assert lines[-1].startswith("error: "), stderr
    return lines[-1]


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with StubServer(make_responder("accept")) as server:
        yield server


@pytest.fixture(scope="module")
def finished_run(
    stub: StubServer, demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    res = run_cli(generate_args(out, 3), cli_env(stub.base_url, demo_store_path))
    assert res.returncode == 0, res.stderr
    assert len(rows(out / "accepted.jsonl")) == 3 and rows(out / "rejected.jsonl") == []
    return out


def started(run: Path) -> int:
    return len(rows(run / "started.jsonl"))


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def test_markup_in_a_path_prints_as_written(tmp_path: Path) -> None:
    weird = tmp_path / "[/bold]odd[red]run"
    res = run_cli(["inspect", str(weird)], no_endpoint(tmp_path))
    assert res.returncode == 2
    assert one_error(res) == f"error: {weird} is not a run directory (no manifest.json)"


def test_markup_in_paths_of_working_commands_prints_as_written(
    tmp_path: Path, stub: StubServer, demo_store_path: Path
) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "insulin"}) + "\n")
    store = tmp_path / "[/bold]store[red]"
    res = run_cli(["ingest", str(corpus)], no_endpoint(tmp_path) | {"CLINSYNTH_STORE": str(store)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(
        "ingested 1 documents (0 already stored as is, 0 changed, 0 duplicates skipped) → "
        f"1 chunks written, 0 stale deleted, into 'corpus' at {store} ("
    )
    out = tmp_path / "[/]run[bold"
    res = run_cli(generate_args(out, 1), cli_env(stub.base_url, demo_store_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip().endswith(f"→ {out}") and f"out {out}" in res.stderr
    assert len(rows(out / "accepted.jsonl")) == 1


def test_latin1_config_names_file_and_encoding(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_bytes('[run]\nn = 2\ntopic = "café"\n'.encode("latin-1"))
    res = run_cli(["generate", "--config", str(config), "--no-progress"], no_endpoint(tmp_path))
    assert res.returncode == 2
    assert one_error(res) == (
        f"error: {config}:3: not UTF-8 text (invalid continuation byte); save it as UTF-8"
    )


def test_ingest_non_utf8_corpus_stores_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "notes.csv"
    corpus.write_bytes("id,text\n1,caf\xe9\n".encode("cp1252"))
    env = no_endpoint(tmp_path)
    res = run_cli(["ingest", str(corpus)], env)
    assert res.returncode == 2
    assert one_error(res) == (
        f"error: {corpus}: not UTF-8 text (invalid continuation byte); save it as UTF-8 "
        "— nothing was stored"
    )
    assert VectorStore(tmp_path / "store", HashingEmbedder()).count() == 0


def test_ingest_reset_with_broken_jsonl_keeps_the_old_collection(tmp_path: Path) -> None:
    env = no_endpoint(tmp_path)
    old = tmp_path / "old.jsonl"
    old.write_text(
        "".join(json.dumps({"id": f"o{i}", "text": f"old {i}"}) + "\n" for i in range(3))
    )
    assert run_cli(["ingest", str(old)], env).returncode == 0
    lines = [json.dumps({"id": f"n{i}", "text": f"new {i}"}) for i in range(400)]
    broken = tmp_path / "new.jsonl"
    broken.write_text("\n".join([*lines, '{"id": "n400", "te']) + "\n")
    res = run_cli(["ingest", "--reset", str(broken)], env)
    assert res.returncode == 2
    line = one_error(res)
    assert line.startswith(f"error: {broken}:401: invalid JSON (")
    assert line.endswith("— nothing was stored")
    assert VectorStore(tmp_path / "store", HashingEmbedder()).ids() == ["o0#0", "o1#0", "o2#0"]


def _tear_middle_line(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1][: len(lines[1]) // 2] + b"\n"
    path.write_bytes(b"".join(lines))


def test_torn_jsonl_line_mid_file_then_repair_then_resume(
    run_copy: Path, stub: StubServer, demo_store_path: Path
) -> None:
    accepted = run_copy / "accepted.jsonl"
    candidates = started(run_copy)
    _tear_middle_line(accepted)
    env = cli_env(stub.base_url, demo_store_path)
    for args in (["inspect", str(run_copy)], ["report", str(run_copy)], generate_args(run_copy, 3)):
        res = run_cli(args, env)
        assert res.returncode == 2
        line = one_error(res)
        assert line.startswith(f"error: {accepted}:2: corrupt line (")
        assert line.endswith(f"); run 'clinsynth repair {run_copy}'")
    res = run_cli(["repair", str(run_copy)], env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "accepted.jsonl: moved 1 unreadable line(s) (line 2) to accepted.jsonl.corrupt; 2 kept"
    ]
    assert len((run_copy / "accepted.jsonl.corrupt").read_bytes().splitlines()) == 1
    summary = json.loads(run_cli(["inspect", "--json", str(run_copy)], env).stdout)
    assert (summary["accepted"], summary["candidates"]) == (2, candidates)
    assert len(summary["unfinished"]) == candidates - 2
    res = run_cli(generate_args(run_copy, 3), env)
    assert res.returncode == 0, res.stderr
    assert len(rows(accepted)) == 3 and started(run_copy) == candidates
    assert run_cli(["repair", str(run_copy)], env).stdout.strip() == (
        f"nothing to repair in {run_copy}"
    )


def test_garbage_checkpoints_then_repair_then_resume(
    run_copy: Path, stub: StubServer, demo_store_path: Path
) -> None:
    db = run_copy / "checkpoints.sqlite"
    for extra in ("-wal", "-shm"):
        db.with_name(db.name + extra).unlink(missing_ok=True)
    db.write_bytes(b"garbage, not SQLite " * 200)
    env = cli_env(stub.base_url, demo_store_path)
    res = run_cli(generate_args(run_copy, 4), env)
    assert res.returncode == 2
    assert one_error(res) == (
        f"error: {db} is not a readable checkpoint database (file is not a database); "
        f"run 'clinsynth repair {run_copy}'"
    )
    res = run_cli(["repair", str(run_copy)], env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "checkpoints.sqlite: unreadable, moved to checkpoints.sqlite.corrupt; items that were "
        "in flight restart from their first step on the next run"
    ]
    assert (run_copy / "checkpoints.sqlite.corrupt").read_bytes().startswith(b"garbage")
    res = run_cli(generate_args(run_copy, 4), env)
    assert res.returncode == 0, res.stderr
    assert len(rows(run_copy / "accepted.jsonl")) == 4


@pytest.mark.parametrize("name", ["manifest.json", "run.json"])
def test_broken_json_run_file_then_repair(
    run_copy: Path, stub: StubServer, demo_store_path: Path, name: str
) -> None:
    broken = run_copy / name
    original = json.loads(broken.read_text())
    broken.write_text(broken.read_text()[:40])
    env = cli_env(stub.base_url, demo_store_path)
    command = ["inspect", str(run_copy)] if name == "manifest.json" else generate_args(run_copy, 3)
    res = run_cli(command, env)
    assert res.returncode == 2
    line = one_error(res)
    assert line.startswith(f"error: {broken} is corrupt (")
    assert line.endswith(f"); run 'clinsynth repair {run_copy}'")
    res = run_cli(["repair", str(run_copy)], env)
    assert res.returncode == 0, res.stderr
    source = "the JSONL files" if name == "manifest.json" else "manifest"
    assert res.stdout.splitlines() == [
        f"{name}: unreadable, moved to {name}.corrupt; rebuilt from {source}"
    ]
    assert len((run_copy / f"{name}.corrupt").read_text()) == 40
    summary = json.loads(run_cli(["inspect", "--json", str(run_copy)], env).stdout)
    candidates = started(run_copy)
    assert (summary["accepted"], summary["rejected"], summary["candidates"]) == (3, 0, candidates)
    if name == "run.json":
        assert json.loads(broken.read_text()) == original
    else:
        assert json.loads(broken.read_text())["counts"] == {
            "accepted": 3,
            "rejected": 0,
            "surplus": 0,
            "candidates": candidates,
            "in_flight": 0,
        }
    res = run_cli(generate_args(run_copy, 4), env)
    assert res.returncode == 0, res.stderr
    assert len(rows(run_copy / "accepted.jsonl")) == 4


def test_correct_labels_missing_label_and_empty_csv(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\nb,y\nc,NaN\nd,x\n")
    args = ["correct-labels", str(data), "--text-col", "text", "--label-col", "label"]
    res = run_cli(args, no_endpoint(tmp_path))
    assert res.returncode == 2
    assert one_error(res) == (
        f"error: {data}:4: missing label ('label' is 'NaN'); fill it in or remove the row"
    )
    data.write_text("")
    res = run_cli(args, no_endpoint(tmp_path))
    assert res.returncode == 2
    assert one_error(res) == f"error: {data} is empty (no header row, no data)"


def test_generate_tool_on_a_corrupt_run_is_a_tool_error(
    stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    import asyncio

    from clinsynth.config import Settings
    from clinsynth.tools.models import GenerateArgs, ToolError
    from clinsynth.tools.toolkit import ClinsynthToolkit

    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"seed": ')
    toolkit = ClinsynthToolkit(
        Settings(
            base_url=stub.base_url,
            api_key="k",
            model="stub-model",
            store=demo_store_path,
            embedder="hashing",
        ),
        data_dir=tmp_path,
    )
    with pytest.raises(ToolError) as err:
        asyncio.run(toolkit.generate(GenerateArgs(n=1, out_dir=str(out))))
    assert str(err.value).startswith(f"{out / 'run.json'} is corrupt (")
    assert str(err.value).endswith(f"); run 'clinsynth repair {out}'")
