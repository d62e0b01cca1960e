"""The baselines beside every fine-tuned classifier, the flag for a model that does not beat
them, and the F1 threshold rule (no model training: scikit-learn only)."""

from __future__ import annotations

import numpy as np
import pytest

from clinsynth.commands._train_report import _flag_lines, _table
from clinsynth.finetune import (
    DatasetError,
    best_f1_threshold,
    classification_scores,
    compare_to_baselines,
    majority_scores,
    tfidf_lr_scores,
)

POS = ["aspirin relieved headache quickly", "headache relieved by aspirin", "aspirin works well"]
NEG = ["placebo gave nausea", "nausea after placebo dose", "placebo failed with nausea"]


def _pairs(n: int) -> list[tuple[str, str]]:
    return [(POS[i % 3], "success") if i % 2 else (NEG[i % 3], "failure") for i in range(n)]


def test_majority_predicts_the_most_frequent_training_label() -> None:
    scores = majority_scores(
        ["success"] * 3 + ["failure"],
        ["success", "failure", "success", "success"],
        ["failure", "success"],
        "success",
    )
    assert scores["predicts"] == "success"
    assert scores["accuracy"] == 0.75 and scores["recall"] == 1.0
    assert scores["f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert scores["roc_auc"] == 0.5  # a constant score ranks nothing
    flipped = majority_scores(
        ["failure"] * 2 + ["success"], ["success"] * 2, ["failure", "success"]
    )
    assert flipped["predicts"] == "failure" and flipped["f1"] == 0.0


def test_tfidf_lr_separates_separable_texts_and_follows_the_threshold_rule() -> None:
    train, held = _pairs(60), _pairs(20)
    plain = tfidf_lr_scores(train, held, ["failure", "success"], "success")
    assert plain["roc_auc"] == 1.0 and plain["accuracy"] == 1.0 and plain["threshold"] is None
    tuned = tfidf_lr_scores(train, held, ["failure", "success"], "success", decision="val_f1")
    assert tuned["roc_auc"] == 1.0 and 0.0 < tuned["threshold"] < 1.0
    with pytest.raises(DatasetError, match="two classes"):
        tfidf_lr_scores([(t, "success") for t, _ in train], held, ["failure", "success"])
    with pytest.raises(DatasetError, match="TF-IDF baseline"):
        tfidf_lr_scores([("a", "success"), ("b", "failure")], held, ["failure", "success"])


def test_compare_flags_every_metric_and_baseline_not_beaten() -> None:
    def summary(auc: float, f1: float) -> dict[str, dict[str, float]]:
        return {"roc_auc": {"mean": auc}, "f1": {"mean": f1}}

    baselines = {"majority": summary(0.5, 0.80), "tfidf_lr": summary(0.72, 0.78)}
    ok = compare_to_baselines(summary(0.75, 0.81), baselines)
    assert ok == {"beats_all": True, "metrics": ["roc_auc", "f1"], "failures": []}
    bad = compare_to_baselines(summary(0.70, 0.80), baselines)
    assert not bad["beats_all"]
    assert bad["failures"] == [
        "f1 0.800 does not beat majority 0.800",  # a tie is not a win
        "roc_auc 0.700 does not beat tfidf_lr 0.720",
    ]
    missing = compare_to_baselines({"f1": {"mean": 0.9}}, baselines)
    assert "roc_auc n/a does not beat majority 0.500" in missing["failures"]


def test_best_f1_threshold_and_thresholded_scores() -> None:
    y = [True, True, True, False, False]
    p = np.array([0.9, 0.4, 0.35, 0.3, 0.1])
    thr = best_f1_threshold(y, p)
    assert thr == pytest.approx(0.35)  # predicting the top three positive gives F1 = 1
    proba = np.stack([1 - p, p], axis=1)
    labels = ["failure", "success"]
    truth = ["success" if v else "failure" for v in y]
    assert classification_scores(truth, proba, labels, threshold=thr)["f1"] == 1.0
    assert classification_scores(truth, proba, labels)["f1"] == pytest.approx(0.5)
    assert best_f1_threshold([True, True], [0.2, 0.3]) == 0.5  # one class: no choice to make


def _results(beats: bool) -> dict[str, object]:
    cell = {"mean": 0.7, "sd": 0.01, "n": 3}
    verdict = {"beats_all": beats, "failures": [] if beats else ["f1 0.700 does not beat x"]}
    base = {"summary": {"roc_auc": cell, "f1": cell}}
    return {
        "sets": {
            "real": {
                "n_train": 10,
                "summary": {"roc_auc": cell, "f1": cell},
                "baselines": {"majority": base, "tfidf_lr": base},
                "vs_baselines": verdict,
            }
        }
    }


def test_cli_table_shows_baseline_rows_and_flags_a_losing_model() -> None:
    from rich.console import Console

    def render(beats: bool) -> str:
        console = Console(width=200, record=True, file=None)
        with console.capture() as cap:
            console.print(_table(_results(beats), ("roc_auc", "f1")))
        return cap.get()

    losing = render(False)
    assert "real: majority" in losing and "real: tfidf_lr" in losing
    assert "does NOT beat baselines" in losing
    assert "does NOT beat" not in render(True)
    assert _flag_lines(_results(False)) == [
        "warning: real: the fine-tuned model does not beat its baselines: f1 0.700 does not beat x"
    ]
    assert _flag_lines(_results(True)) == []
