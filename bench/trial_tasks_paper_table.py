"""TrialPanorama-style table for the ``trial-tasks`` recipe: per task, the accuracy of the
endpoint's model on generated tasks vs on tasks built from held-out real records, beside the
trivial solvers (lexical overlap, embedding similarity, longest option) and trivial baselines.

Usage:
  nice -n 10 python bench/trial_tasks_paper_table.py --stub     # CI-sized, scripted stub model
  nice -n 10 python bench/trial_tasks_paper_table.py [--n 20]   # the configured endpoint

Steps, as a user runs them: ``clinsynth ingest-trials`` (training trials as ``train``,
held-out trials as ``eval`` so they never feed generation), ``clinsynth generate --recipe
trial-tasks --option task=T`` for each task, then the model answers (a) the accepted generated
tasks and (b) tasks built the same way from the eval-split records (question template, the
trial's own answer, distractors from other held-out trials). Scoring as TrialPanorama's
benchmark: multiple choice by letter, sample size correct within ±20 %, completion by outcome.

Data: --stub uses made-up CT.gov studies (clinsynth/testing/trial_tasks_responder.py) and a
scripted "solver" that always answers A / the training median / "completed": its numbers test
the pipeline and say NOTHING about a model. The real mode reads TrialBench Phase 4 (design,
enrollment; MIT) and HINT phase II valid (status; non-commercial) from CLINSYNTH_SHARED_DATA,
split 80/20 by a seeded shuffle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinsynth.datasets.trials import TrialRecord, load_trials  # noqa: E402
from clinsynth.evaluators.task_key import (  # noqa: E402
    embedding_solver,
    lexical_solver,
    longest_solver,
    position_balance,
    solver_accuracy,
)
from clinsynth.evaluators.text import normalize  # noqa: E402
from clinsynth.recipes.trial_tasks.critic import input_text, mcq_view  # noqa: E402
from clinsynth.recipes.trial_tasks.pool import answer_letter, nearest_distinct, topic_words  # noqa: E402
from clinsynth.recipes.trial_tasks.prompts import INSTRUCTIONS  # noqa: E402
from clinsynth.recipes.trial_tasks.sources import (  # noqa: E402
    answer_text,
    eligible,
    facts_of,
    inputs_of,
    what,
)

RESULTS = REPO / "bench" / "results"
TASKS = ("criteria_mcq", "arm_mcq", "sample_size", "completion")


class McqAnswer(BaseModel):
    answer_choice: Literal["A", "B", "C", "D"]


class SizeAnswer(BaseModel):
    sample_size_needed: int


class CompletionAnswer(BaseModel):
    outcome: Literal["completed", "terminated"]


SCHEMAS: dict[str, type[BaseModel]] = {
    "criteria_mcq": McqAnswer,
    "arm_mcq": McqAnswer,
    "sample_size": SizeAnswer,
    "completion": CompletionAnswer,
}


def cli(args: list[str], env: dict[str, str]) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "clinsynth.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"clinsynth {' '.join(args[:3])} failed: {res.stderr.strip()[-400:]}")
    return res.stdout


def real_items(task: str, records: list[TrialRecord], seed: int) -> list[dict[str, Any]]:
    """Tasks built from held-out records the way the recipe builds them, without a model."""
    pool = [r for r in records if eligible(task, r)]
    rng = random.Random(f"{seed}:{task}")
    by_id = {r.id: r for r in pool}
    ids = sorted(by_id)
    topics = {r.id: topic_words(r) for r in pool}
    answers = {r.id: normalize(answer_text(task, r)) for r in pool}
    items: list[dict[str, Any]] = []
    for i, rec in enumerate(pool):
        base = {"task_type": task, "trial_id": rec.id, "inputs": inputs_of(task, rec)}
        if task in ("criteria_mcq", "arm_mcq"):
            truth = answer_text(task, rec)
            picked = nearest_distinct(rec.id, ids, topics, answers, rng)  # as the recipe does
            if len(picked) < 3:
                continue
            letter = answer_letter(seed, i)
            wrong = iter(answer_text(task, by_id[j]) for j in picked)
            options = {x: truth if x == letter else next(wrong) for x in "ABCD"}
            question = f"Which of the following is the {what(task)} of this trial?"
            items.append({**base, "question": question, "options": options, "answer": letter})
        elif task == "sample_size":
            question = "How many participants did this trial enrol?"
            items.append({**base, "question": question, "answer": facts_of(rec).enrollment})
        else:
            question = "Will this trial complete, or terminate early?"
            labels = {"outcome": facts_of(rec).completion()}
            items.append({**base, "question": question, "labels": labels})
    return items


def correct(task: str, item: dict[str, Any], reply: BaseModel | None) -> bool:
    if reply is None:
        return False
    if isinstance(reply, McqAnswer):
        return reply.answer_choice == item["answer"]
    if isinstance(reply, SizeAnswer):
        truth = int(item["answer"])
        return 0.8 * truth <= reply.sample_size_needed <= 1.2 * truth
    assert isinstance(reply, CompletionAnswer)
    return reply.outcome == item["labels"]["outcome"]


def scripted_answer(task: str, train_median: int) -> BaseModel:
    """--stub: a 'model' that always answers the same; exercises scoring, not a model."""
    if task in ("criteria_mcq", "arm_mcq"):
        return McqAnswer(answer_choice="A")
    if task == "sample_size":
        return SizeAnswer(sample_size_needed=train_median)
    return CompletionAnswer(outcome="completed")


async def model_answers(task: str, items: list[dict[str, Any]]) -> list[BaseModel | None]:
    from langchain_core.messages import HumanMessage, SystemMessage

    from clinsynth.config import Settings
    from clinsynth.llm import StructuredLLM
    from clinsynth.llm.endpoint import EndpointConfig, build_chat_model

    cfg = EndpointConfig.model_validate(Settings().endpoints()["generator"].model_dump())
    llm = StructuredLLM(build_chat_model(cfg), name="solver")
    out: list[BaseModel | None] = []
    for item in items:
        messages = [SystemMessage(INSTRUCTIONS[task]), HumanMessage(input_text(item))]
        res = await llm.ainvoke(messages, SCHEMAS[task], temperature=0.0)
        out.append(res.parsed)
    return out


def score(
    task: str, items: list[dict[str, Any]], stub: bool, train: list[TrialRecord], embed: Any
) -> dict[str, Any]:
    sizes = [n for r in train if (n := facts_of(r).enrollment)]
    median = int(statistics.median(sizes)) if sizes else 100
    if stub:
        replies: list[BaseModel | None] = [scripted_answer(task, median) for _ in items]
    else:
        replies = asyncio.run(model_answers(task, items))
    hits = [correct(task, it, r) for it, r in zip(items, replies, strict=True)]
    cell: dict[str, Any] = {
        "n": len(items),
        "model_accuracy": sum(hits) / len(hits) if hits else None,
        "unparsed": sum(r is None for r in replies),
    }
    if task in ("criteria_mcq", "arm_mcq") and items:
        views = [mcq_view(it) for it in items]
        cell["trivial_solvers"] = [
            solver_accuracy(views, lexical_solver, "lexical").model_dump(),
            solver_accuracy(views, embedding_solver(embed), "embedding").model_dump(),
            solver_accuracy(views, longest_solver, "longest").model_dump(),
        ]
        cell["positions"] = position_balance([it["answer"] for it in items]).model_dump()
    if task == "sample_size" and items:
        base = [correct(task, it, SizeAnswer(sample_size_needed=median)) for it in items]
        cell["baseline_train_median"] = {"answer": median, "accuracy": sum(base) / len(base)}
    if task == "completion" and items:
        labels = [facts_of(r).completion() for r in train if facts_of(r).completion()]
        major = max(set(labels), key=labels.count) if labels else "completed"
        base = [it["labels"]["outcome"] == major for it in items]
        cell["baseline_train_majority"] = {"answer": major, "accuracy": sum(base) / len(base)}
    return cell


def load_sources(stub: bool, work: Path, seed: int) -> tuple[list[Path], list[Path]]:
    """(train files, eval files) to ingest."""
    if stub:
        from clinsynth.testing.trial_tasks_responder import write_ctgov_studies

        train = write_ctgov_studies(work / "train.json", n=40, seed=seed)
        held = write_ctgov_studies(work / "eval.json", n=12, seed=seed + 1, start=500)
        return [train], [held]
    root = Path(os.environ.get("CLINSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
    files = [
        root / "trialbench_approval_phase4" / "train.csv",
        root / "hint_top" / "phase_II_valid.csv",
    ]
    train_files: list[Path] = []
    eval_files: list[Path] = []
    for path in files:
        recs = load_trials(path)
        rng = random.Random(f"{seed}:{path.name}")
        rng.shuffle(recs)
        cut = int(len(recs) * 0.8)
        for part, name, bucket in (
            (recs[:cut], "train", train_files),
            (recs[cut:], "eval", eval_files),
        ):
            ids = {r.id for r in part}
            out = work / f"{path.parent.name}_{name}.csv"
            import csv

            csv.field_size_limit(10**9)
            with path.open(newline="") as src, out.open("w", newline="") as dst:
                reader = csv.DictReader(src)
                writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
                writer.writeheader()
                writer.writerows(row for row in reader if row["nctid"].strip() in ids)
            bucket.append(out)
    return train_files, eval_files


def solvers_only(seed: int, out: Path | None) -> None:
    """How separable real-distractor tasks from held-out real records are, per table."""
    from clinsynth.memory.embeddings import make_embedder

    started = time.time()
    name = os.environ.get("CLINSYNTH_EMBEDDER", "minilm")
    embed = make_embedder(name).embed
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _, eval_files = load_sources(False, Path(tmp), seed)
        for path in eval_files:
            held = load_trials(path)
            for task in ("criteria_mcq", "arm_mcq"):
                items = real_items(task, held, seed)
                if not items:
                    continue
                views = [mcq_view(it) for it in items]
                rows[f"{path.stem}:{task}"] = {
                    "n": len(items),
                    "trivial_solvers": [
                        solver_accuracy(views, lexical_solver, "lexical").model_dump(),
                        solver_accuracy(views, embedding_solver(embed), "embedding").model_dump(),
                        solver_accuracy(views, longest_solver, "longest").model_dump(),
                    ],
                    "positions": position_balance([it["answer"] for it in items]).model_dump(),
                }
    result = {
        "bench": "trial_tasks_paper_table --solvers-only",
        "data": "held-out 20 % (seeded shuffle) of TrialBench phase 4 train.csv and HINT "
        "phase_II_valid.csv; distractors: other held-out trials' texts",
        "embedder": name,
        "split_seed": seed,
        "rows": rows,
        "seconds": round(time.time() - started, 1),
        "machine": {"loadavg": os.getloadavg(), "cpus": os.cpu_count()},
    }
    path = out or RESULTS / "trial_tasks_solvers_real.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    for key, row in rows.items():
        accs = {s["solver"]: round(s["accuracy"], 3) for s in row["trivial_solvers"]}
        print(key, row["n"], accs)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stub", action="store_true")
    parser.add_argument("--n", type=int, default=None, help="generated tasks per task [20; stub 6]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--solvers-only",
        action="store_true",
        help="no generation, no model: trivial solvers on multiple-choice tasks built from the "
        "held-out 20 %% of the real tables",
    )
    args = parser.parse_args()
    if args.solvers_only:
        solvers_only(args.seed, args.out)
        return
    n = args.n or (6 if args.stub else 20)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {
            k: v for k, v in os.environ.items() if not (args.stub and k.startswith("CLINSYNTH_"))
        }
        env["CLINSYNTH_STORE"] = str(work / "store")
        server = None
        if args.stub:
            from clinsynth.testing.stub_server import StubServer
            from clinsynth.testing.trial_tasks_responder import make_responder

            server = StubServer(make_responder("mixed")).__enter__()
            env.update(
                CLINSYNTH_BASE_URL=server.base_url,
                CLINSYNTH_API_KEY="stub",
                CLINSYNTH_MODEL="stub-model",
                CLINSYNTH_EMBEDDER="hashing",
            )
        try:
            train_files, eval_files = load_sources(args.stub, work, args.seed)
            for path in train_files:
                cli(["ingest-trials", str(path), "--collection", "ttasks"], env)
            for path in eval_files:
                cli(["ingest-trials", str(path), "--collection", "ttasks", "--split", "eval"], env)
            train = [r for p in train_files for r in load_trials(p)]
            held = [r for p in eval_files for r in load_trials(p)]
            from clinsynth.memory.embeddings import make_embedder

            embed = make_embedder(env.get("CLINSYNTH_EMBEDDER", "minilm")).embed
            rows: dict[str, Any] = {}
            for task in TASKS:
                out = work / f"run-{task}"
                gen = ["generate", "--recipe", "trial-tasks", "--collection", "ttasks"]
                gen += ["--option", f"task={task}", "-n", str(n), "--seed", str(args.seed)]
                gen += ["--max-attempts", "3", "--out", str(out), "--no-progress"]
                summary = cli(gen, env).strip().splitlines()[-1]
                accepted = [
                    json.loads(line)["item"]
                    for line in (out / "accepted.jsonl").read_text().splitlines()
                    if line.strip()
                ]
                rows[task] = {
                    "generation": summary,
                    "generated": score(task, accepted, args.stub, train, embed),
                    "held_out_real": score(
                        task, real_items(task, held, args.seed), args.stub, train, embed
                    ),
                }
        finally:
            if server is not None:
                server.__exit__(None, None, None)
    result = {
        "bench": "trial_tasks_paper_table",
        "mode": "stub" if args.stub else "endpoint",
        "note": (
            "stub: made-up studies and a scripted solver that always answers A / the training "
            "median / 'completed' — tests the pipeline, says nothing about a model"
            if args.stub
            else "endpoint model from CLINSYNTH_* settings"
        ),
        "data": "made-up CT.gov studies (40 train, 12 eval)"
        if args.stub
        else "TrialBench phase 4 train.csv + HINT phase_II_valid.csv, 80/20 seeded split",
        "split_seed": args.seed,
        "n_per_task": n,
        "rows": rows,
        "seconds": round(time.time() - started, 1),
        "machine": {
            "loadavg": os.getloadavg(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    path = args.out or RESULTS / (
        "trial_tasks_paper_table.stub.json" if args.stub else "trial_tasks_paper_table.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                t: {k: v.get("model_accuracy") for k, v in r.items() if isinstance(v, dict)}
                for t, r in rows.items()
            },
            indent=1,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
