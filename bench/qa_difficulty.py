"""Real-data benchmark: does a difficulty score predict an *independent* reader's failure?

Usage: python bench/qa_difficulty.py [--predictions FILE] [--data DIR] [--output FILE]

Input: the per-question outputs of bench/qa_reader.py on full-context COVID-QA dev
(bench/results/qa_reader_predictions.json): readers A and B were trained on disjoint article
halves of COVID-QA train (cross-fitting), and each answered every dev question. Failure of a
reader on a question = SQuAD F1 < 0.5 against the gold answer.

A difficulty score for question q is computed with one reader (X) plus signals of the item
itself (its question and answer, as the critic has them for a generated item), and is scored
against the failure of the *other* reader (Y), which never shared training data with X. Both
directions (A→B, B→A) are used.

Signals (higher = harder, fixed a priori): the recipe's reader score 1 − F1_X × confidence_X
(``ReaderDifficulty`` with the recipe's confidence, sigmoid(best span − null score)); X's
gold-free confidence (1 − span probability, entropy over candidate spans, −margin to the
runner-up, 1 − start × end peak); 1 − question overlap with X's predicted answer sentence;
the rank of the answer sentence when the article's sentences are retrieved with the question
(TF-IDF); answer length and type; and the lexical proxy (1 − overlap with the answer sentence,
``LexicalDifficulty``, reader-free). Agreement between A and B is reported apart: it uses the
target reader's own answer, so it is not an independent predictor.

Protocol: dev articles are split in two halves by a seed ("selection" / "report"). On the
selection half only: logistic-regression weights for the combined score and the bin edges
(quartiles of each score). On the report half: ROC-AUC (95 % bootstrap interval) of every
score and the failure rate of Y per bin, with a monotonicity check. The trivial baseline is a
constant score (AUC 0.5) and Y's overall failure rate.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from qa_covid import article_id, load_split, sentences, set_data_dir  # noqa: E402

from clinsynth.evaluators.difficulty import LexicalDifficulty  # noqa: E402
from clinsynth.evaluators.sentences import sentence_at, sentence_novelty  # noqa: E402
from clinsynth.finetune import QAExample, f1  # noqa: E402

RESULTS = REPO / "bench" / "results"
FAIL_F1 = 0.5
SIGNALS = (
    "reader_score",
    "low_span_prob",
    "entropy",
    "neg_margin",
    "low_start_end",
    "null_gap",
    "pred_sentence_novelty",
    "answer_sentence_rank",
    "answer_words",
    "answer_is_number",
    "lexical",
)
COMBINED = (
    "reader_score",
    "low_span_prob",
    "entropy",
    "neg_margin",
    "pred_sentence_novelty",
    "answer_sentence_rank",
    "answer_words",
)


def monotone_bins(scores: np.ndarray, failed: np.ndarray, edges: np.ndarray) -> dict[str, Any]:
    """Failure rate per bin of ``scores`` cut at ``edges``, and whether it never decreases."""
    idx = np.searchsorted(edges, scores, side="right")
    rates, counts = [], []
    for b in range(len(edges) + 1):
        sel = idx == b
        counts.append(int(sel.sum()))
        rates.append(float(failed[sel].mean()) if sel.any() else None)
    present = [r for r in rates if r is not None]
    rising = all(a <= b + 1e-12 for a, b in itertools.pairwise(present))
    return {
        "edges": [round(float(e), 4) for e in edges],
        "n": counts,
        "failure_rate": [None if r is None else round(r, 4) for r in rates],
        "monotone_non_decreasing": rising,
    }


def auc_with_ci(
    y: np.ndarray,
    s: np.ndarray,
    seed: int,
    n_boot: int = 1000,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """ROC-AUC and a percentile bootstrap 95 % interval, resampling whole ``groups`` (the
    questions: each has one row per direction) or single rows."""
    from sklearn.metrics import roc_auc_score

    if len(set(y.tolist())) < 2:
        return {"roc_auc": None, "ci95": None}
    keys = np.arange(len(y)) if groups is None else groups
    uniq = np.unique(keys)
    members = {k: np.flatnonzero(keys == k) for k in uniq}
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = np.concatenate([members[k] for k in rng.choice(uniq, len(uniq))])
        if len(set(y[i].tolist())) == 2:
            boots.append(roc_auc_score(y[i], s[i]))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {
        "roc_auc": round(float(roc_auc_score(y, s)), 4),
        "ci95": [round(float(lo), 4), round(float(hi), 4)],
    }


def features(ex: QAExample, row: dict[str, Any], rank: int) -> dict[str, float]:
    """The signals of one (question, scoring reader X) pair; higher = harder."""
    gold_f1 = f1(row["text"], ex.answer_text)
    margin = (row["score"] or 0.0) - row["null_score"]
    confidence = 1.0 / (1.0 + math.exp(-max(min(margin, 50.0), -50.0)))
    novelty = sentence_novelty(ex.question, ex.context, row["start"] or 0)
    answer = ex.answer_text or ""
    lexical = LexicalDifficulty().score(ex.question, ex.context, answer).difficulty
    return {
        "reader_score": 1.0 - gold_f1 * confidence,
        "low_span_prob": 1.0 - row["p_best"],
        "entropy": row["entropy"],
        "neg_margin": -row["margin"],
        "low_start_end": 1.0 - row["p_start"] * row["p_end"],
        "null_gap": row["null_score"] - (row["score"] or 0.0),
        "pred_sentence_novelty": novelty,
        "answer_sentence_rank": math.log1p(rank),
        "answer_words": math.log1p(len(answer.split())),
        "answer_is_number": float(any(ch.isdigit() for ch in answer)),
        "lexical": lexical,
    }


def answer_sentence_ranks(dev: list[QAExample]) -> dict[str, int]:
    """Rank (0 = first) of the gold answer's sentence among its article's sentences when they
    are retrieved with the question by TF-IDF cosine (vocabulary fitted per article)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    ranks = {}
    for ex in dev:
        spans = sentences(ex.context)
        texts = [ex.context[a:b] for a, b in spans]
        vec = TfidfVectorizer(stop_words="english").fit([*texts, ex.question])
        sims = (vec.transform(texts) @ vec.transform([ex.question]).T).toarray().ravel()
        target = spans.index(sentence_at(ex.context, ex.answer_start or 0))
        ranks[ex.id] = int((sims > sims[target]).sum())
    return ranks


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--predictions",
        type=Path,
        nargs="+",
        default=[RESULTS / "qa_reader_predictions.json"],
        help="one or more qa_reader prediction files (readers merged; A and B needed)",
    )
    p.add_argument("--data", type=Path, default=None, help="covid_qa folder")
    p.add_argument("--output", type=Path, default=RESULTS / "qa_difficulty.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", default=None, help="a disclosure stored in the JSON (e.g. who looked)")
    args = p.parse_args(argv)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    set_data_dir(args.data)
    rows: dict[str, dict[str, Any]] = {}
    for path in args.predictions:
        for name, rs in json.loads(path.read_text())["readers"].items():
            rows[name] = {r["id"]: r for r in rs}
    if not {"A", "B"} <= set(rows):
        raise SystemExit(f"need cross-fit readers A and B, got {sorted(rows)}")
    if set(rows["A"]) != set(rows["B"]):
        raise SystemExit("readers A and B answered different dev questions")
    dev = [ex for ex in load_split("dev") if ex.id in rows["A"]]
    ranks = answer_sentence_ranks(dev)
    arts = sorted({article_id(e) for e in dev})
    np.random.default_rng(args.seed).shuffle(arts)
    selection_arts = set(arts[: len(arts) // 2])
    table = []  # (part, direction, features, other failed, agreement)
    for x, y in (("A", "B"), ("B", "A")):
        for ex in dev:
            fx, fy = rows[x][ex.id], rows[y][ex.id]
            table.append(
                {
                    "part": "selection" if article_id(ex) in selection_arts else "report",
                    "direction": f"{x}->{y}",
                    "id": ex.id,
                    "x": features(ex, fx, ranks[ex.id]),
                    "y_failed": float(f1(fy["text"], ex.answer_text) < FAIL_F1),
                    "disagreement": 1.0 - f1(fx["text"], fy["text"]),
                }
            )
    sel = [r for r in table if r["part"] == "selection"]
    rep = [r for r in table if r["part"] == "report"]

    def matrix(rs: list[dict[str, Any]], names: tuple[str, ...]) -> np.ndarray:
        return np.array([[r["x"][n] for n in names] for r in rs])

    y_sel = np.array([r["y_failed"] for r in sel])
    y_rep = np.array([r["y_failed"] for r in rep])
    if len(set(y_sel.tolist())) < 2 or len(set(y_rep.tolist())) < 2:
        # One class only (e.g. readers that fail every question): no AUC is defined, and
        # nothing can be validated. Say so instead of writing a number.
        why = (
            f"other-reader failure rate {y_sel.mean():.2f} (selection) / {y_rep.mean():.2f} "
            "(report): one class only, ROC-AUC undefined; the readers are too weak to validate "
            "a difficulty measure"
        )
        out = {
            "benchmark": "difficulty vs an independent reader's failure (not computable)",
            "predictions": [_shown(p) for p in args.predictions],
            "not_computable": why,
            "n_rows": {"selection": len(sel), "report": len(rep)},
            "machine": {"loadavg": os.getloadavg(), "cpu_count": os.cpu_count()},
            "seconds": round(time.perf_counter() - t0, 1),
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(out, indent=2) + "\n")
        print(f"not computable: {why} -> {args.output}")
        return
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(matrix(sel, COMBINED), y_sel)
    scores_sel = {n: matrix(sel, (n,)).ravel() for n in SIGNALS}
    scores_rep = {n: matrix(rep, (n,)).ravel() for n in SIGNALS}
    scores_sel["combined"] = model.predict_proba(matrix(sel, COMBINED))[:, 1]
    scores_rep["combined"] = model.predict_proba(matrix(rep, COMBINED))[:, 1]
    scores_sel["disagreement"] = np.array([r["disagreement"] for r in sel])
    scores_rep["disagreement"] = np.array([r["disagreement"] for r in rep])
    report: dict[str, Any] = {}
    groups = np.array([r["id"] for r in rep])
    direction = np.array([r["direction"] for r in rep])
    for name in scores_rep:
        edges = np.unique(np.quantile(scores_sel[name], [0.25, 0.5, 0.75]))
        by_dir = {
            d: auc_with_ci(
                y_rep[direction == d], scores_rep[name][direction == d], args.seed, n_boot=1
            )["roc_auc"]
            for d in ("A->B", "B->A")
        }
        report[name] = {
            "report": auc_with_ci(y_rep, scores_rep[name], args.seed, groups=groups)
            | {"by_direction": by_dir, "bins": monotone_bins(scores_rep[name], y_rep, edges)},
            "selection_auc": auc_with_ci(y_sel, scores_sel[name], args.seed, n_boot=1)["roc_auc"],
        }
    weights = model[-1].coef_.ravel().tolist()
    cv_auc = _cross_validated_auc(matrix(sel, COMBINED), y_sel, [r["id"] for r in sel], args.seed)
    chosen = _choose(report, cv_auc)
    result = {
        "benchmark": "difficulty score vs an independent (cross-fitted) reader's failure, "
        "COVID-QA dev, full-context readers",
        "predictions": [_shown(p) for p in args.predictions],
        "failure": f"SQuAD F1 < {FAIL_F1} of the other reader against the gold answer",
        "protocol": {
            "readers": "A, B trained on disjoint article halves of COVID-QA train "
            "(bench/qa_reader.py cross-fit); each question scored with X, target = Y's failure, "
            "both directions pooled (2 rows per question)",
            "split": f"dev articles shuffled with seed {args.seed}: first half = selection "
            "(weights of 'combined' and bin edges chosen here), second half = report "
            "(all figures under 'report'); never the other way round",
            "selection_articles": sorted(selection_arts),
            "n_rows": {"selection": len(sel), "report": len(rep)},
            "n_questions": {"selection": len(sel) // 2, "report": len(rep) // 2},
            "bins": "quartile edges of each score on the selection half",
            "combined_signals": list(COMBINED),
            "combined_weights_standardized": {
                n: round(w, 4) for n, w in zip(COMBINED, weights, strict=True)
            },
            "disagreement_note": "uses the target reader's own answer: not an independent "
            "predictor, reported for reference only",
        },
        "trivial_baseline": {
            "constant_score_auc": 0.5,
            "failure_rate_report": round(float(y_rep.mean()), 4),
            "failure_rate_selection": round(float(y_sel.mean()), 4),
        },
        "chosen": chosen,
        "note": args.note,
        "scores": report,
        "machine": {"loadavg": os.getloadavg(), "cpu_count": os.cpu_count()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    base = result["trivial_baseline"]["failure_rate_report"]
    print(f"report half: {len(rep) // 2} questions x 2 directions; other-reader failure {base:.2f}")
    for name, r in report.items():
        b = r["report"]["bins"]
        print(
            f"  {name:22s} AUC {r['report']['roc_auc']} CI {r['report']['ci95']}  bins "
            f"{b['failure_rate']} monotone={b['monotone_non_decreasing']}"
        )
    print(f"chosen on the selection half: {chosen['signal']} -> report {chosen['report']}")
    print(f"-> {args.output}")


def _cross_validated_auc(x: np.ndarray, y: np.ndarray, ids: list[str], seed: int) -> float | None:
    """Out-of-fold ROC-AUC of the combined score within the selection half (5 folds by
    question), so that it competes with the single signals on equal terms."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = np.zeros(len(y))
    for fit, held in GroupKFold(n_splits=5).split(x, y, groups=ids):
        if len(set(y[fit].tolist())) < 2:
            return None
        m = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
        out[held] = m.fit(x[fit], y[fit]).predict_proba(x[held])[:, 1]
    return round(float(roc_auc_score(y, out)), 4) if len(set(y.tolist())) == 2 else None


def _choose(report: dict[str, Any], combined_cv_auc: float | None) -> dict[str, Any]:
    """The score with the highest selection-half AUC (the combined score by its out-of-fold
    AUC; agreement is excluded), and what the report half says about it."""
    candidates = {n: report[n]["selection_auc"] for n in SIGNALS} | {"combined": combined_cv_auc}
    name = max((n for n, a in candidates.items() if a is not None), key=lambda n: candidates[n])
    rep = report[name]["report"]
    auc, ci = rep["roc_auc"], rep["ci95"]
    return {
        "rule": "highest selection-half ROC-AUC among the single signals and the combined "
        "score (out-of-fold, 5 folds by question); validated = report-half AUC >= 0.6 with "
        "the 95 % interval above 0.5; goal = AUC >= 0.70 and monotone bins",
        "selection_aucs": candidates,
        "signal": name,
        "report": {"roc_auc": auc, "ci95": ci, "bins": rep["bins"]},
        "validated": bool(auc is not None and auc >= 0.6 and ci is not None and ci[0] > 0.5),
        "meets_goal": bool(
            auc is not None and auc >= 0.70 and rep["bins"]["monotone_non_decreasing"]
        ),
    }


if __name__ == "__main__":
    main()
