"""Does "make them harder" select questions an independent reader fails more often?

Usage: python bench/qa_harder.py [--reader-parts DIR] [--predictions FILE]
                                 [--difficulty FILE] [--data DIR] [--out FILE] [--seed S]

Held-out real questions stand in for generated items, and the product's own code grades them:
the critic's scorer when a reader is configured (``ReaderSentenceDifficulty`` over
``TrainedReader``) with cross-fitted reader A (trained on one article half of COVID-QA train by
bench/qa_reader.py, ``--save-crossfit``), and the band that the chat's ``escalate`` asks for
after a first batch (its mean measured difficulty + ``ESCALATION_STEP``), checked with
``difficulty_check``. The independent judge is reader B (the other article half, never
trained with A), whose answers are read from bench/results/qa_reader_predictions.json;
failure = SQuAD F1 < 0.5.

Questions: the *report* half of COVID-QA dev as bench/qa_difficulty.py split it (the half the
measure's selection never saw). Trivial baseline: B's failure rate on all of them (what a
random subset would show). Result: B's failure rate on the items the "harder" gate accepts vs
on all, with a bootstrap 95 % interval of the difference (resampling questions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from qa_covid import article_id, load_split, set_data_dir  # noqa: E402

from clinsynth.apps.chat_session import ESCALATION_STEP, escalate  # noqa: E402
from clinsynth.config import parse_band  # noqa: E402
from clinsynth.evaluators.difficulty import (  # noqa: E402
    ReaderSentenceDifficulty,
    difficulty_check,
)
from clinsynth.finetune import f1  # noqa: E402
from clinsynth.finetune.qa_bundle import assemble  # noqa: E402
from clinsynth.recipes.qa.reader import TrainedReader  # noqa: E402

RESULTS = REPO / "bench" / "results"
FAIL_F1 = 0.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reader-parts", type=Path, default=REPO / "bench" / ".cache" / "reader_A")
    p.add_argument("--predictions", type=Path, default=RESULTS / "qa_reader_predictions.json")
    p.add_argument("--difficulty", type=Path, default=RESULTS / "qa_difficulty.json")
    p.add_argument("--data", type=Path, default=None, help="covid_qa folder")
    p.add_argument("--out", type=Path, default=RESULTS / "qa_harder.json")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    set_data_dir(args.data)
    if not (args.reader_parts / "reader.json").is_file():
        raise SystemExit(
            f"no split reader in {args.reader_parts}: run bench/qa_reader.py --save-crossfit "
            "and unpack its reader_A folder there"
        )
    split = json.loads(args.difficulty.read_text())["protocol"]
    selection = set(split["selection_articles"])
    readers = json.loads(args.predictions.read_text())["readers"]
    a_rows, b_rows = ({r["id"]: r for r in readers[name]} for name in ("A", "B"))
    report = [e for e in load_split("dev") if article_id(e) not in selection and e.id in b_rows]
    with tempfile.TemporaryDirectory(prefix="qa-harder-") as tmp:
        reader = TrainedReader(assemble(args.reader_parts, Path(tmp) / "reader"))
        reader.load()
        scorer = ReaderSentenceDifficulty(reader)
        scores = []
        for i, ex in enumerate(report):
            scores.append(scorer.score(ex.question, ex.context, ex.answer_text or ""))
            if (i + 1) % 20 == 0:
                print(f"{i + 1}/{len(report)} scored ({time.perf_counter() - t0:.0f}s)")
    difficulty = np.array([s.difficulty for s in scores])
    b_failed = np.array([f1(b_rows[e.id]["text"], e.answer_text) < FAIL_F1 for e in report])
    same_answer = sum(
        (s.details.get("reader_answer") or "") == (a_rows[e.id]["text"] or "")
        for s, e in zip(scores, report, strict=True)
    )
    first_mean = float(difficulty.mean())
    target = escalate(first_mean, None)
    band = parse_band(target)
    assert band is not None
    passed = np.array([difficulty_check(s, band).passed for s in scores])
    graded = all(difficulty_check(s, band).details.get("graded") for s in scores)
    rng = np.random.default_rng(args.seed)
    diffs = []
    for _ in range(2000):
        i = rng.integers(0, len(report), len(report))
        if passed[i].any():
            diffs.append(b_failed[i][passed[i]].mean() - b_failed[i].mean())
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    result: dict[str, Any] = {
        "benchmark": "chat 'harder' gate on held-out real COVID-QA questions vs an independent "
        "reader's failure",
        "protocol": {
            "questions": f"report half of COVID-QA dev ({len(report)} questions; the split of "
            f"{args.difficulty.name})",
            "critic_reader": "cross-fitted reader A (article half A of COVID-QA train), through "
            "TrainedReader + ReaderSentenceDifficulty, on the whole article",
            "judge": "cross-fitted reader B (article half B), answers from "
            f"{args.predictions.name}; failure = F1 < {FAIL_F1}",
            "harder_band": f"escalate(mean difficulty of the first batch = {first_mean:.3f}) "
            f"-> {target} (ESCALATION_STEP {ESCALATION_STEP})",
            "bootstrap": f"2000 resamples of questions, seed {args.seed}",
        },
        "all_graded": graded,
        "reader_A_reloaded_same_answer": f"{same_answer}/{len(report)} (fp16 parts vs the "
        "fp32 reader that wrote the predictions)",
        "n_questions": len(report),
        "n_accepted_harder": int(passed.sum()),
        "b_failure_all": round(float(b_failed.mean()), 4),
        "b_failure_harder": round(float(b_failed[passed].mean()), 4) if passed.any() else None,
        "b_failure_rest": round(float(b_failed[~passed].mean()), 4) if (~passed).any() else None,
        "difference_harder_minus_all": {
            "value": round(float(b_failed[passed].mean() - b_failed.mean()), 4),
            "ci95": [round(float(lo), 4), round(float(hi), 4)],
        },
        "trivial_baseline": "a random subset has B's overall failure rate (b_failure_all)",
        "machine": {
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
            "cpu_count": os.cpu_count(),
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "protocol"}, indent=1))


if __name__ == "__main__":
    main()
