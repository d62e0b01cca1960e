"""Distributed generation on a local Ray instance with 2 workers against the stub server:
exact n with quotas, no duplicate ids, a killed worker, a killed driver and its resume, and
a Chroma server store. One Ray instance serves the whole module (it is slow to start)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip(
    "ray", reason="the 'scale' extra (Ray) is not installed: pip install -e '.[scale]'"
)

from clinsynth.config import RunConfig, Settings  # noqa: E402
from clinsynth.generate_options import ResolvedRun  # noqa: E402
from clinsynth.graphs.factory import build_deps  # noqa: E402
from clinsynth.graphs.manifest import Progress  # noqa: E402
from clinsynth.memory.embeddings import HashingEmbedder  # noqa: E402
from clinsynth.runtime.runfiles import iter_jsonl, read_records  # noqa: E402
from clinsynth.scale.driver import DistributedRun  # noqa: E402
from clinsynth.scale.parts import part_dir  # noqa: E402
from clinsynth.testing.qa_responder import make_responder  # noqa: E402
from clinsynth.testing.stub_server import StubServer  # noqa: E402
from tests.conftest import DEMO_CORPUS  # noqa: E402
from tests.integration.test_cli_generate import CLI, cli_env, rows, run_cli  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray instance of 2 CPUs for the module; CLI subprocesses join it by address."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,
        log_to_driver=False,
        logging_level="warning",
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(make_responder("accept"), latency_s=0.03) as server:
        yield server


def resolved(stub: StubServer, store: Path | str, out: Path, run: RunConfig) -> ResolvedRun:
    settings = Settings(
        base_url=stub.base_url,
        api_key="k",
        model="stub-model",
        embedder="hashing",
        store=Path(store),
        max_retries=1,
    )
    return ResolvedRun(run, settings, settings.endpoints(), out)


def distributed(
    stub: StubServer, store: Path, out: Path, run: RunConfig, on_progress: Any = None
) -> DistributedRun:
    r = resolved(stub, store, out, run)
    deps, _ = build_deps(r.settings, run, endpoints=r.endpoints, embedder=HashingEmbedder())
    return DistributedRun(r, deps, 2, on_progress=on_progress)


def assert_exact(out: Path, n: int) -> dict[str, Any]:
    """Exactly n accepted; every started item logged once, in exactly one file."""
    accepted, rejected = rows(out / "accepted.jsonl"), rows(out / "rejected.jsonl")
    surplus, started = rows(out / "surplus.jsonl"), rows(out / "started.jsonl")
    ids = [r["id"] for r in accepted + rejected + surplus]
    assert len(accepted) == n
    assert len(ids) == len(set(ids)), "an item was written twice"
    assert len({r["id"] for r in started}) == len(started)
    assert set(ids) == {r["id"] for r in started}, "a started item was lost"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["finished"] and manifest["stop_reason"] == "target reached"
    assert manifest["counts"]["accepted"] == n
    assert manifest["counts"]["candidates"] == len(started)
    return manifest


def test_two_workers_reach_exact_quotas_without_duplicates(
    ray_address: str, stub: StubServer, demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = RunConfig(quotas={"answerable": 5, "unanswerable": 3}, max_concurrency=4)
    summary = distributed(stub, demo_store_path, out, run).run()
    assert summary.accepted == 8 and summary.stop_reason == "target reached"
    manifest = assert_exact(out, 8)
    labels = Counter(
        "answerable" if r["item"]["answerable"] else "unanswerable"
        for r in rows(out / "accepted.jsonl")
    )
    assert labels == {"answerable": 5, "unanswerable": 3}
    assert summary.quotas == {"answerable": 5, "unanswerable": 3}
    per_worker = manifest["distributed"]["per_worker"]
    assert set(per_worker) == {"w0", "w1"}
    assert all(w["started"] > 0 and w["cpu_s"] > 0 for w in per_worker.values()), per_worker
    assert sum(w["accepted"] for w in per_worker.values()) == 8
    # each passage stored once per run, as a single-process run stores them, and read back
    passages = {r["id"]: r["text"] for r in rows(out / "passages.jsonl")}
    raw = iter_jsonl(out / "accepted.jsonl")  # as written (rows() restores passages)
    grounded = [r for r in raw if r["item"].get("context_id")]
    assert grounded and all("context" not in r["item"] for r in grounded)
    # the dataset card's licences come from the passages' sources
    sourced = {
        r["id"]
        for r in iter_jsonl(out / "passages.jsonl")
        if (r.get("metadata") or {}).get("source")
    }
    assert all(set(r["provenance"]["source_ids"]) <= sourced for r in grounded)
    for rec in read_records(out / "accepted.jsonl"):
        if rec.item and rec.item.get("context_id"):
            assert rec.item["context"] == passages[rec.item["context_id"]]


def test_a_killed_worker_loses_no_finished_item_and_its_items_are_redone(
    ray_address: str, demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    written_by_w0: set[str] = set()

    def kill_w0_early(p: Progress, driver: DistributedRun) -> None:
        # Once w0 (which may start seconds after w1 on a busy machine) has written an item
        # and still has some in flight (its started items outnumber its written ones).
        if written_by_w0:
            return
        w0 = part_dir(out, 0)
        started = len(rows(w0 / "started.jsonl"))
        logged = sum(len(rows(w0 / f"{s}.jsonl")) for s in ("accepted", "rejected", "surplus"))
        if 1 <= logged < started:
            driver.kill_worker(0)
            time.sleep(0.5)  # the process is gone; what it wrote is final
            done = part_dir(out, 0)
            written_by_w0.update(
                r["id"]
                for name in ("accepted", "rejected", "surplus")
                for r in rows(done / f"{name}.jsonl")
            )
            written_by_w0.add("killed")

    # 0.2 s a call, 2 request slots for 4 items per worker, each worker's share (12) above
    # its pool: for seconds w0 has items written and others in flight.
    run = RunConfig(n=24, max_concurrency=2)
    with StubServer(make_responder("accept"), latency_s=0.2) as stub:
        summary = distributed(stub, demo_store_path, out, run, kill_w0_early).run()
    assert "killed" in written_by_w0, "the run ended before the worker was killed"
    manifest = assert_exact(out, 24)
    assert summary.accepted == 24
    info = manifest["distributed"]
    assert info["workers_lost"] == 1 and info["replacements"] == {"w0": 1}
    assert info["items_redone"] >= 1, "the killed worker had items in flight"
    final = {
        r["id"] for name in ("accepted", "rejected", "surplus") for r in rows(out / f"{name}.jsonl")
    }
    assert written_by_w0 - {"killed"} <= final, "a finished item of the killed worker was lost"


def test_killed_driver_resumes_with_exact_counts(
    ray_address: str, demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = ["generate", "-n", "10", "--concurrency", "2", "--out", str(out), "--no-progress"]
    args += ["--workers", "2", "--ray-address", ray_address]
    with StubServer(make_responder("accept"), latency_s=0.1) as stub:
        env = cli_env(stub.base_url, demo_store_path)
        proc = subprocess.Popen(
            [*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            done = sum(len(rows(p / "accepted.jsonl")) for p in (out / "parts").glob("w*"))
            if done >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = sum(len(rows(p / "accepted.jsonl")) for p in (out / "parts").glob("w*"))
        assert 2 <= before < 10
        res = run_cli(args, env, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "target reached: 10 accepted" in res.stdout and "(resumed)" in res.stdout
    manifest = assert_exact(out, 10)
    assert manifest["resumed"] is True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """``chroma run`` on 127.0.0.1 with a temporary path; stopped (by its pid) at the end."""
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        pytest.skip("the chroma CLI is not installed beside this Python")
    port = free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "chroma"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "chroma.log").read_text()[-2000:]
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_ingest_and_generate_against_a_chroma_server(
    ray_address: str, stub: StubServer, chroma_server: str, tmp_path: Path
) -> None:
    env = cli_env(stub.base_url, Path("unused"))
    env["CLINSYNTH_STORE"] = chroma_server  # CLINSYNTH_STORE names the server
    res = run_cli(["ingest", str(DEMO_CORPUS)], env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "ingested" in res.stdout
    out = tmp_path / "run"
    # Settings hold the store as a Path, as --store does, which folds "//" into "/".
    summary = distributed(stub, Path(chroma_server), out, RunConfig(n=4)).run()
    assert summary.accepted == 4
    assert_exact(out, 4)
    from clinsynth.memory.store import VectorStore

    store = VectorStore(chroma_server, HashingEmbedder())
    assert store.count() > 0
    sources = {s for r in rows(out / "accepted.jsonl") for s in r["provenance"]["source_ids"]}
    assert sources and len(store.get(sorted(sources))) == len(sources)
