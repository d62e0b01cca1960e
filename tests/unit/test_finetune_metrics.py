"""Hand-computed cases for the QA and classification metrics and the seed summary."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from clinsynth.finetune import (
    QAExample,
    QAPrediction,
    classification_scores,
    exact_match,
    f1,
    mean_sd,
    normalize_answer,
    qa_scores,
    reference_overlap,
    run_seeds,
)


def test_normalize_answer_follows_squad() -> None:
    assert normalize_answer("The  Fever, lasted (7) days!") == "fever lasted 7 days"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer(None) == ""


@pytest.mark.parametrize(
    ("pred", "gold", "em"),
    [
        ("seven days", "Seven days.", 1.0),
        ("the seven days", "seven days", 1.0),
        ("seven", "seven days", 0.0),
        (None, None, 1.0),
        ("", None, 1.0),
        ("x", None, 0.0),
    ],
)
def test_exact_match(pred: str | None, gold: str | None, em: float) -> None:
    assert exact_match(pred, gold) == em


def test_f1_token_overlap() -> None:
    # pred tokens: fever lasted seven days; gold: seven days -> P=2/4, R=2/2, F1=2/3
    assert f1("fever lasted seven days", "seven days") == pytest.approx(2 / 3)
    assert f1("cough cough", "cough") == pytest.approx(2 * 0.5 * 1 / 1.5)  # multiset overlap
    assert f1("fever", "cough") == 0.0
    assert f1(None, None) == 1.0  # both unanswerable
    assert f1("seven days", None) == 0.0
    assert f1(None, "seven days") == 0.0
    assert f1("the", "a") == 1.0  # both normalise to empty


def test_reference_overlap_on_character_spans() -> None:
    assert reference_overlap(10, 20, 15, 30) == 1.0
    assert reference_overlap(10, 15, 15, 30) == 0.0  # end is exclusive: touching is not overlap
    assert reference_overlap(0, 5, 15, 30) == 0.0
    assert reference_overlap(None, None, None, None) == 1.0
    assert reference_overlap(None, None, 1, 4) == 0.0
    assert reference_overlap(1, 4, None, None) == 0.0


def _pred(
    id_: str, text: str | None, start: int | None, unanswerable: bool = False
) -> QAPrediction:
    end = None if start is None or text is None else start + len(text)
    return QAPrediction(
        id=id_,
        text=text,
        start=start,
        end=end,
        score=1.0,
        null_score=0.0,
        is_unanswerable=unanswerable,
    )


def test_qa_scores_mix_answerable_and_unanswerable() -> None:
    ctx = "the fever lasted seven days and the cough lasted ten days ."
    examples = [
        QAExample(
            id="a",
            question="q",
            context=ctx,
            answer_text="seven days",
            answer_start=ctx.index("seven days"),
        ),
        QAExample(
            id="b",
            question="q",
            context=ctx,
            answer_text="ten days",
            answer_start=ctx.index("ten days"),
        ),
        QAExample(id="c", question="q", context=ctx),
    ]
    preds = [
        _pred("a", "seven days", ctx.index("seven days")),  # exact
        _pred("b", "cough lasted ten", ctx.index("cough lasted ten")),  # partial
        _pred("c", "the fever", 0, unanswerable=True),  # correctly abstains
    ]
    scores = qa_scores(preds, examples)
    assert scores["exact_match"] == pytest.approx(100 * 2 / 3)
    # b: pred {cough, lasted, ten}, gold {ten, days}: P=1/3 R=1/2 F1=0.4
    assert scores["f1"] == pytest.approx(100 * (1 + 0.4 + 1) / 3)
    assert scores["reference_overlap"] == pytest.approx(100.0)
    assert scores["has_ans_exact_match"] == 50.0 and scores["no_ans_f1"] == 100.0
    assert (scores["n"], scores["n_answerable"], scores["n_unanswerable"]) == (3, 2, 1)
    assert scores["n_predicted_unanswerable"] == 1
    forced = qa_scores([p.with_threshold(math.inf) for p in preds], examples)
    assert forced["no_ans_exact_match"] == 0.0 and forced["n_predicted_unanswerable"] == 0
    with pytest.raises(ValueError, match="no prediction"):
        qa_scores(preds[:2], examples)


def test_classification_scores_binary() -> None:
    labels = ["failure", "success"]
    y = ["success", "success", "failure", "failure"]
    proba = np.array([[0.1, 0.9], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7]])
    s = classification_scores(y, proba, labels)
    # predictions: success, failure, failure, success
    assert s["accuracy"] == 0.5
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["f1"] == 0.5
    assert s["positive_label"] == "success"
    # positives scored 0.9, 0.4; negatives 0.2, 0.7 -> 3 of 4 pairs ordered right
    assert s["roc_auc"] == pytest.approx(0.75)
    # ranking: 0.9 (+), 0.7 (-), 0.4 (+), 0.2 (-): AP = (1/1 + 2/3) / 2
    assert s["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    flipped = classification_scores(y, proba, labels, positive_label="failure")
    assert flipped["positive_label"] == "failure" and flipped["roc_auc"] == pytest.approx(0.75)


def test_classification_scores_multiclass_and_undefined_auc() -> None:
    labels = [0, 1, 2]
    y = [0, 1, 2, 2]
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
    s = classification_scores(y, proba, labels)
    assert s["accuracy"] == 0.75
    # per-class F1: class0 P=1/2 R=1 -> 2/3; class1 1; class2 P=1 R=1/2 -> 2/3
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert s["f1"] == s["macro_f1"]
    assert s["roc_auc"] is not None and 0.5 < s["roc_auc"] <= 1.0
    one_class = classification_scores([1, 1], np.array([[0.2, 0.8], [0.6, 0.4]]), [0, 1])
    assert one_class["roc_auc"] is None and one_class["pr_auc"] is None
    with pytest.raises(ValueError, match="not in labels"):
        classification_scores([5], np.array([[0.5, 0.5]]), [0, 1])
    with pytest.raises(ValueError, match="shape"):
        classification_scores([0, 1], np.array([[1.0, 0.0]]), [0, 1])


def test_mean_sd_and_run_seeds() -> None:
    runs: list[dict[str, Any]] = [
        {"f1": 50.0, "em": 10, "note": "x"},
        {"f1": 60.0, "em": 20},
        {"f1": 70.0},
    ]
    summary = mean_sd(runs)
    assert summary["f1"] == {"mean": 60.0, "sd": pytest.approx(10.0), "n": 3}
    assert summary["em"]["mean"] == 15.0 and summary["em"]["n"] == 2
    assert "note" not in summary
    assert mean_sd([{"f1": 1.0}])["f1"]["sd"] == 0.0
    out = run_seeds(lambda seed: {"score": float(seed)}, seeds=(1, 2, 3))
    assert out["seeds"] == [1, 2, 3]
    assert [r["score"] for r in out["runs"]] == [1.0, 2.0, 3.0]
    assert out["summary"]["score"]["mean"] == 2.0
