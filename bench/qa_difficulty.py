"""Real-data benchmark: does the difficulty score predict reader failure on COVID-QA dev?

Usage: nice -n 10 python bench/qa_difficulty.py [--quick] [--reader DIR]

For each dev question (read in the same passages as bench/qa_reader.py) the reader saved by
bench/qa_reader.py (bench/.cache/qa_reader/) answers; failure = SQuAD F1 < 0.5. Reported:

- ROC-AUC of the model-free ``LexicalDifficulty`` proxy against that failure (the honest
  number: the proxy never sees the reader);
- ROC-AUC of the reader's own gold-free uncertainty (1 − confidence) against its failure —
  selective-prediction quality of the same reader, not circular in the label, but the same
  model;
- ROC-AUC of the recipe's ``ReaderDifficulty`` computed with the *same* reader: circular (the
  score contains the reader's F1 against the gold answer), so near 1 by construction and only
  a sanity check. A fair test of the reader score needs a second, cross-fitted reader (trained
  on other data than the one whose failure is predicted), outside this CPU budget;
- overlap of the real questions with their documents: share with zero content-word overlap,
  quantiles and a histogram (against the passage, the whole article and the answer sentence).

CPU budget: ≤ 5 min on 2 free cores (203 dev passages ≈ 300 window forwards; no training).
Use the same ``--passage-chars`` and seed as the qa_reader.py run that trained the reader.
Without a saved reader only the overlap statistics and the proxy's distribution are written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from qa_reader import CACHE, load_split  # noqa: E402

from clinsynth.evaluators.answer import answer_f1  # noqa: E402
from clinsynth.evaluators.difficulty import (  # noqa: E402
    LexicalDifficulty,
    ReaderAnswer,
    ReaderDifficulty,
    answer_sentence,
)
from clinsynth.evaluators.overlap import lexical_overlap  # noqa: E402
from clinsynth.finetune import QAExample, QAPrediction  # noqa: E402

RESULTS = REPO / "bench" / "results" / "qa_difficulty.json"
BUDGET = "<= 5 min on 2 free CPU cores (prediction only; the reader comes from qa_reader.py)"


def overlap_stats(values: list[float]) -> dict[str, Any]:
    """Share at zero, mean, quantiles and a 10-bin histogram of overlap values in [0, 1]."""
    arr = np.asarray(values, dtype=float)
    counts, edges = np.histogram(arr, bins=10, range=(0.0, 1.0))
    return {
        "n": int(arr.size),
        "share_zero": round(float(np.mean(arr == 0.0)), 4),
        "share_le_0.5": round(float(np.mean(arr <= 0.5)), 4),
        "mean": round(float(arr.mean()), 4),
        "quantiles": {
            str(q): round(float(np.quantile(arr, q)), 4) for q in (0.1, 0.25, 0.5, 0.75, 0.9)
        },
        "histogram": {"edges": [round(float(e), 2) for e in edges], "counts": counts.tolist()},
    }


def auc(scores: list[float], failed: list[bool]) -> float | None:
    """ROC-AUC of ``scores`` for predicting ``failed`` (None if only one class occurs)."""
    from sklearn.metrics import roc_auc_score

    if len(set(failed)) < 2:
        return None
    return round(float(roc_auc_score(failed, scores)), 4)


def _mean_where(values: list[float], flags: list[bool], flag: bool) -> float | None:
    chosen = [v for v, f in zip(values, flags, strict=True) if f is flag]
    return round(float(np.mean(chosen)), 4) if chosen else None


class _Replay:
    """A ``QAReaderLike`` that replays one precomputed answer (scoring without re-running)."""

    def __init__(self, reply: ReaderAnswer) -> None:
        self.reply = reply

    def answer(self, question: str, context: str) -> ReaderAnswer:
        return self.reply


def reader_section(reader_dir: Path, dev: list[QAExample]) -> dict[str, Any]:
    """Reader failure on ``dev`` and how well each score predicts it."""
    from clinsynth.finetune import Reader
    from clinsynth.recipes.qa.reader import confidence_of

    reader = Reader.load(reader_dir)
    t0 = time.perf_counter()
    preds: list[QAPrediction] = [p.with_threshold(float("inf")) for p in reader.predict(dev)]
    seconds = time.perf_counter() - t0
    lexical = LexicalDifficulty()
    f1s, failed, proxy, unsure, circular = [], [], [], [], []
    for ex, pred in zip(dev, preds, strict=True):
        gold = ex.answer_text or "unanswerable"
        f1 = answer_f1(pred.text or "", gold)
        conf = confidence_of(pred)
        f1s.append(f1)
        failed.append(f1 < 0.5)
        proxy.append(lexical.score(ex.question, ex.context, gold).difficulty)
        unsure.append(1.0 - conf)
        reply = ReaderAnswer(text=pred.text, abstained=False, confidence=conf)
        circular.append(ReaderDifficulty(_Replay(reply)).score(ex.question, ex.context, gold))
    return {
        "reader_dir": str(reader_dir),
        "reader_train_stats": {k: v for k, v in reader.train_stats.items() if k.startswith("n_")},
        "predict_seconds": round(seconds, 1),
        "reader_f1_mean": round(100 * float(np.mean(f1s)), 2),
        "failure_rate": round(float(np.mean(failed)), 4),
        "failure": "SQuAD F1 of the reader's forced answer < 0.5",
        "roc_auc": {
            "lexical_proxy": auc(proxy, failed),
            "reader_uncertainty_gold_free": auc(unsure, failed),
            "reader_difficulty_same_reader_CIRCULAR": auc([c.difficulty for c in circular], failed),
        },
        "lexical_proxy_mean": {
            "failed": _mean_where(proxy, failed, True),
            "succeeded": _mean_where(proxy, failed, False),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="first 40 dev questions")
    parser.add_argument("--reader", type=Path, default=CACHE, help="saved reader directory")
    parser.add_argument("--passage-chars", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    output = args.output or (
        RESULTS.with_name("qa_difficulty_quick.json") if args.quick else RESULTS
    )
    t0 = time.perf_counter()
    dev = load_split("dev", args.passage_chars, args.seed)
    articles = load_split("dev", None)
    if args.quick:
        dev, articles = dev[:40], articles[:40]
    sentence_overlap = []
    for ex in dev:
        assert ex.answer_start is not None and ex.answer_end is not None
        sentence = answer_sentence(ex.context, ex.answer_start, ex.answer_end)
        sentence_overlap.append(lexical_overlap(ex.question, sentence))
    result: dict[str, Any] = {
        "benchmark": "covid_qa dev: difficulty score vs reader failure; question overlap",
        "quick": args.quick,
        "cpu_budget": BUDGET,
        "n_dev_questions": len(dev),
        "contexts": f"passages of {args.passage_chars} chars around the gold answer "
        f"(seed {args.seed}), as in qa_reader.py",
        "overlap_of_real_questions": {
            "with_passage": overlap_stats([lexical_overlap(e.question, e.context) for e in dev]),
            "with_whole_article": overlap_stats(
                [lexical_overlap(e.question, e.context) for e in articles]
            ),
            "with_answer_sentence": overlap_stats(sentence_overlap),
        },
    }
    if (args.reader / "config.json").is_file():
        result["reader"] = reader_section(args.reader, dev)
    else:
        result["reader"] = None
        result["note"] = f"no saved reader at {args.reader}: run bench/qa_reader.py first"
    result["seconds"] = round(time.perf_counter() - t0, 1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    ov = result["overlap_of_real_questions"]
    print(
        f"real questions with zero content-word overlap: passage "
        f"{ov['with_passage']['share_zero']:.1%}, article "
        f"{ov['with_whole_article']['share_zero']:.1%}; median overlap with passage "
        f"{ov['with_passage']['quantiles']['0.5']:.2f}"
    )
    if result["reader"]:
        r = result["reader"]
        print(
            f"reader F1 {r['reader_f1_mean']:.1f}, failure rate {r['failure_rate']:.1%}; "
            f"ROC-AUC vs failure: lexical proxy {r['roc_auc']['lexical_proxy']}, reader "
            f"uncertainty {r['roc_auc']['reader_uncertainty_gold_free']}, reader difficulty "
            f"(same reader, circular) {r['roc_auc']['reader_difficulty_same_reader_CIRCULAR']}"
        )
    else:
        print(result["note"])
    print(f"-> {output}")


if __name__ == "__main__":
    main()
