"""The paper's table (arXiv 2412.04573): four prompt variants × real / synthetic / hybrid training.

Usage:
  nice -n 10 python bench/qa_paper_table.py            # the endpoint in CLINSYNTH_* (as the CLI)
  nice -n 10 python bench/qa_paper_table.py --quick    # same, CI-sized
  python bench/qa_paper_table.py --stub                # CI-sized, scripted stub server, tiny BERT

For each variant (``direct``, ``no_overlap``, ``summary``, ``summary+no_overlap``) the ``qa``
recipe generates ``--n-synthetic`` items from COVID-QA train passages (1,000 characters
around each gold answer, ingested into a temporary store). Readers are trained on real data
only (the *full* real train set unless ``--n-real``; once, the same row for every variant), on
the variant's synthetic items, and on both (hybrid = the full real set plus every accepted
synthetic item, no cap on windows, so hybrid is a superset of real, not a subsample), one per
seed (``--seeds``, default 0 1 2), then scored on COVID-QA dev passages: EM / F1 / Reference
Overlap (mean ± sd over seeds; forced answer — COVID-QA has no unanswerable questions).

CPU budget (full run, MiniLM, windows 256/64): (1 + 2 × 4 variants) × 3 seeds = 27 trainings,
the real and hybrid ones over all 1,417 train passages (~1,700 windows each) — several hours
on 2 free cores, plus the endpoint's generation time (4 × n-synthetic items, 3 calls each with
the summary variants, 2 without). ``--quick`` and ``--stub`` are CI-sized (one seed).

``--stub`` starts the scripted stub server (clinsynth/testing/qa_responder.py) in-process and
trains a tiny random BERT: it proves the pipeline runs end to end; its numbers mean nothing
and the output says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from qa_reader import load_split  # noqa: E402

from clinsynth.config import RunConfig, Settings  # noqa: E402
from clinsynth.finetune import (  # noqa: E402
    QAConfig,
    QAExample,
    qa_scores,
    run_seeds,
    train_reader,
)
from clinsynth.graphs.batch import BatchRunner  # noqa: E402
from clinsynth.graphs.factory import build_deps  # noqa: E402
from clinsynth.memory.embeddings import make_embedder  # noqa: E402
from clinsynth.memory.store import VectorStore  # noqa: E402
from clinsynth.recipes import get_recipe  # noqa: E402
from clinsynth.recipes.qa.prompts import VARIANTS  # noqa: E402
from clinsynth.runtime import aio  # noqa: E402
from clinsynth.runtime.runfiles import read_records  # noqa: E402
from clinsynth.schemas import SourceChunk  # noqa: E402

RESULTS = REPO / "bench" / "results"
STUB_BANNER = (
    "STUB RUN: scripted stub-server replies and a tiny random BERT — a pipeline check; "
    "these numbers are NOT results"
)


def items_to_examples(rows: list[dict[str, Any]], prefix: str) -> list[QAExample]:
    """Accepted ``qa`` items as training examples (unanswerable → no answer)."""
    out = []
    for i, row in enumerate(rows):
        item = row["item"]
        start = item.get("answer_start") if item.get("answerable") else None
        out.append(
            QAExample(
                id=f"{prefix}-{i}",
                question=item["question"],
                context=item["context"],
                answer_text=item["answer"] if start is not None else None,
                answer_start=start,
            )
        )
    return out


def ingest_passages(store: Path, passages: list[QAExample], settings: Settings) -> None:
    """The distinct passages as a corpus, in order (the recipe takes passage i for item i)."""
    chunks = list(
        {
            ex.context: SourceChunk(id=f"covidqa-{ex.id}", text=ex.context) for ex in passages
        }.values()
    )
    VectorStore(store, make_embedder(settings.embedder), collection="corpus").add(chunks)


def generate(
    settings: Settings, store: Path, out: Path, variant: str, n: int, options: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the ``qa`` recipe with ``variant``; accepted rows and generation stats."""
    run = RunConfig.model_validate(
        {
            "n": n,
            "max_attempts": 3,
            "max_candidates": 3 * n,
            "max_concurrency": 4,
            "recipe_options": {"variant": variant, **options},
        }
    )
    recipe = get_recipe("qa", run.recipe_options)
    deps, meter = build_deps(settings, run, store_path=store, recipe=recipe)
    t0 = time.perf_counter()
    summary = aio.run(BatchRunner(deps, out, meter=meter).run())
    # passages are stored once per run: read_records puts each item's context back
    rows = [r.model_dump(mode="json") for r in read_records(out / "accepted.jsonl")]
    scores = [r["provenance"]["critic_scores"] for r in rows]

    def mean(name: str) -> float | None:
        vals = [s[name] for s in scores if name in s]
        return round(sum(vals) / len(vals), 4) if vals else None

    stats = {
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "surplus": summary.surplus,
        "stop_reason": summary.stop_reason,
        "unanswerable": sum(not r["item"]["answerable"] for r in rows),
        "mean_lexical_overlap": mean("lexical_overlap"),
        "mean_difficulty": mean("difficulty"),
        "llm_calls": summary.usage.calls,
        "tokens": summary.usage.total_tokens,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return rows, stats


def train_and_score(
    train: list[QAExample], dev: list[QAExample], cfg: QAConfig, seeds: list[int]
) -> dict[str, Any]:
    """EM / F1 / RO on ``dev`` of readers trained on ``train`` (one per seed)."""

    def one(seed: int) -> dict[str, Any]:
        reader = train_reader(train, cfg.model_copy(update={"seed": seed}))
        preds = [p.with_threshold(float("inf")) for p in reader.predict(dev)]
        s = qa_scores(preds, dev)
        return {k: s[k] for k in ("exact_match", "f1", "reference_overlap")}

    result = run_seeds(one, seeds)
    result["n_train"] = len(train)
    return result


def tiny_bert(directory: Path, texts: list[str]) -> Path:
    """A random 2-layer BERT whose WordPiece vocab holds the words of ``texts`` (stub mode)."""
    import re
    from collections import Counter

    import torch

    from clinsynth.testing.tiny_bert import save_tiny_bert

    torch.manual_seed(0)
    words = Counter(w for t in texts for w in re.findall(r"[a-z]+|\d|[^\sa-z\d]", t.lower()))
    return save_tiny_bert(directory, [w for w, _ in words.most_common(3000)])


@contextmanager
def stub_settings() -> Iterator[Settings]:
    """Settings pointing at an in-process stub server with the ``qa`` script."""
    from clinsynth.testing.qa_responder import make_responder
    from clinsynth.testing.stub_server import StubServer

    with StubServer(make_responder("accept")) as server:
        yield Settings.model_validate(
            {
                "base_url": server.base_url,
                "api_key": "stub",
                "model": "stub-model",
                "embedder": "hashing",
                "max_retries": 0,
            }
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stub", action="store_true", help="scripted stub server + tiny BERT")
    parser.add_argument("--quick", action="store_true", help="CI-sized against the endpoint")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--n-synthetic", type=int, default=None, help="items per variant")
    parser.add_argument("--n-real", type=int, default=None, help="real training questions")
    parser.add_argument("--n-dev", type=int, default=None, help="dev questions scored")
    parser.add_argument("--passage-chars", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="[0 1 2; CI: 0]")
    parser.add_argument(
        "--max-train-windows", type=int, default=None, help="cap per training [none]"
    )
    parser.add_argument("--backbone", default=None, help="default: BioBERT, offline MiniLM")
    parser.add_argument("--output", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    small = args.stub or args.quick
    n_syn = args.n_synthetic or (4 if small else 200)
    n_real = args.n_real or (16 if small else None)  # None: the full real train set
    args.seeds = args.seeds or ([0] if small else [0, 1, 2])
    n_dev = args.n_dev or (10 if small else 100)
    chars = args.passage_chars or (400 if args.stub else 1000)
    name = (
        "qa_paper_table_stub"
        if args.stub
        else "qa_paper_table_quick"
        if args.quick
        else ("qa_paper_table")
    )
    output = args.output or RESULTS / f"{name}.json"
    if args.stub:
        print(STUB_BANNER, flush=True)
    t0 = time.perf_counter()
    train_all = load_split("train", chars)
    dev = load_split("dev", chars)[:n_dev]
    real = train_all[:n_real]
    # Passages for generation (retries included): train passages, disjoint from the real set
    # when it is a subset, otherwise the first ones (documents, not questions, are shared).
    pool = (train_all[len(real) :] or train_all)[: 3 * n_syn]
    if len(pool) < 3 * n_syn:
        pool = train_all[: 3 * n_syn]
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        stub_settings() if args.stub else _env_settings() as settings,
    ):
        tmp = Path(tmp_name)
        if args.stub:
            texts = [e.context + " " + e.question for e in real + pool + dev]
            backbone = str(tiny_bert(tmp / "tiny-bert", texts))
            cfg = QAConfig(
                backbone=backbone,
                max_length=128,
                doc_stride=32,
                max_query_length=32,
                max_steps=2,
                batch_size=8,
                lr=1e-3,
            )
            options: dict[str, Any] = {"near_duplicate_threshold": 1.0}
        else:
            cfg = QAConfig(
                backbone=args.backbone,
                max_length=256,
                doc_stride=64,
                max_answer_length=64,
                epochs=1.0,
                lr=2e-4,
                max_train_windows=args.max_train_windows,
            )
            options = {}
        ingest_passages(tmp / "store", pool, settings)
        rows: list[dict[str, Any]] = []
        real_scores = train_and_score(real, dev, cfg, args.seeds)
        generation = {}
        for variant in args.variants:
            accepted, stats = generate(
                settings, tmp / "store", tmp / f"run-{variant}", variant, n_syn, options
            )
            generation[variant] = stats
            synthetic = items_to_examples(accepted, variant)
            cells = {"real": real_scores}
            cells["synthetic"] = (
                train_and_score(synthetic, dev, cfg, args.seeds) if synthetic else {"error": "none"}
            )
            cells["hybrid"] = train_and_score(real + synthetic, dev, cfg, args.seeds)
            for training, res in cells.items():
                rows.append({"variant": variant, "training": training, **_cell(res)})
            print(f"{variant}: generated {stats}", flush=True)
    result = {
        "benchmark": "qa paper table: prompt variant x real/synthetic/hybrid, EM/F1/RO",
        "stub": args.stub,
        "note": STUB_BANNER if args.stub else "endpoint from CLINSYNTH_* settings",
        "quick": args.quick,
        "cpu_budget": "hours on 2 free cores (full run: 27 trainings) + endpoint time",
        "sizes": {"synthetic_per_variant": n_syn, "real": len(real), "dev": n_dev},
        "hybrid": "the real set plus every accepted synthetic item of the variant (no cap)",
        "contexts": f"COVID-QA passages of {chars} chars around the gold answer",
        "reader_config": cfg.model_dump(exclude={"output_dir"}),
        "seeds": args.seeds,
        "generation": generation,
        "table": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(render_table(rows, stub=args.stub))
    print(f"-> {output}")
    return result


def _cell(res: dict[str, Any]) -> dict[str, Any]:
    if "summary" not in res:
        return {"exact_match": None, "f1": None, "reference_overlap": None, **res}
    s = res["summary"]
    return {
        "exact_match": round(s["exact_match"]["mean"], 2),
        "f1": round(s["f1"]["mean"], 2),
        "reference_overlap": round(s["reference_overlap"]["mean"], 2),
        "n_train": res["n_train"],
    }


def render_table(rows: list[dict[str, Any]], *, stub: bool) -> str:
    """The table as text (one line per variant × training set)."""
    lines = [STUB_BANNER] if stub else []
    lines.append(f"{'variant':<20} {'training':<10} {'n':>5} {'EM':>6} {'F1':>6} {'RO':>6}")
    for r in rows:
        cells = [r.get(k) for k in ("exact_match", "f1", "reference_overlap")]
        shown = " ".join(f"{c:>6.1f}" if c is not None else f"{'-':>6}" for c in cells)
        lines.append(f"{r['variant']:<20} {r['training']:<10} {r.get('n_train', 0):>5} {shown}")
    return "\n".join(lines)


@contextmanager
def _env_settings() -> Iterator[Settings]:
    from clinsynth.cli_support import settings_from_env

    yield settings_from_env()


if __name__ == "__main__":
    main()
