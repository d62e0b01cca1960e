"""The label corrector on hand-made cases: planted flips, policies, audit trail, detectors."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from clinsynth.llm import StructuredLLM
from clinsynth.tools.labels import (
    ADJUDICATION_PROMPT_VERSION,
    Adjudication,
    LabelDecision,
    LabelError,
    Method,
    adjudicate,
    adjudication_messages,
    correct_labels,
    detect,
)
from tests.support.fakes import fake_chat

VOCAB = {
    label: words.split()
    for label, words in (
        ("cardio", "heart atrial ventricle murmur stent angina troponin echo systolic aorta"),
        ("neuro", "seizure migraine neuron cortex stroke aphasia tremor gait eeg spine"),
        ("gi", "liver bowel colon gastric ulcer bile pancreas stool hepatic reflux"),
    )
}
FLIPS = (3, 12, 35, 44, 70, 80)


def toy_set() -> tuple[list[str], list[str], list[str]]:
    """90 texts in three word-separable classes; labels with six planted flips."""
    rng = random.Random(0)
    texts, truth = [], []
    for label, words in VOCAB.items():
        for i in range(30):
            texts.append(" ".join(rng.choice(words) for _ in range(12)) + f" case {i}")
            truth.append(label)
    noisy = list(truth)
    for i in FLIPS:
        noisy[i] = next(lab for lab in VOCAB if lab != truth[i])
    return texts, truth, noisy


@pytest.fixture(scope="module")
def toy() -> tuple[list[str], list[str], list[str]]:
    return toy_set()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["argmax", "cleanlab", "ours"])
def test_finds_planted_flips_on_separable_set(
    toy: tuple[list[str], list[str], list[str]], method: Method
) -> None:
    texts, truth, noisy = toy
    decisions = correct_labels(
        texts,
        noisy,
        policy="relabel",
        method=method,
        backbone="hashing",
    )
    flagged = {d.index for d in decisions if d.flagged}
    assert len(flagged & set(FLIPS)) >= 4, (method, sorted(flagged))
    assert not flagged - set(FLIPS), f"{method} flagged clean items {sorted(flagged - set(FLIPS))}"
    for d in decisions:
        if d.flagged:
            assert d.new_label == truth[d.index] == d.suggested_label


@pytest.mark.slow
def test_policies_and_audit_trail(toy: tuple[list[str], list[str], list[str]]) -> None:
    texts, _, noisy = toy
    by_policy = {
        p: correct_labels(texts, noisy, policy=p, backbone="hashing")
        for p in ("flag", "relabel", "drop")
    }
    flagged = [d.index for d in by_policy["flag"] if d.flagged]
    assert flagged
    for policy, decisions in by_policy.items():
        assert [d.index for d in decisions] == list(range(len(texts)))
        assert [d.index for d in decisions if d.flagged] == flagged
        for d in decisions:
            assert d.old_label == noisy[d.index]
            assert d.method == "ours" and d.backbone == "hashing"
            assert set(d.probabilities) == set(VOCAB)
            assert sum(d.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
            assert d.self_confidence == pytest.approx(d.probabilities[d.old_label], abs=1e-5)
            if not d.flagged:
                assert d.action == "keep" and d.new_label == d.old_label
                assert d.label_change() is None
                continue
            assert d.action == policy
            expected = {"flag": d.old_label, "relabel": d.suggested_label, "drop": None}[policy]
            assert d.new_label == expected
            change = d.label_change()
            assert change is not None and change.old == d.old_label and change.new == expected
            assert change.method == f"ours:{policy}" and "margin" in change.reason


def test_argmax_flags_every_disagreement_cleanlab_only_confident_ones() -> None:
    # 20 + 20 confident items, one clear flip (40) and three near-ties labelled 0 (41-43).
    proba = np.array([[0.9, 0.1]] * 20 + [[0.1, 0.9]] * 21 + [[0.45, 0.55]] * 3)
    y = np.array([0] * 20 + [1] * 20 + [0] + [0] * 3)
    assert np.flatnonzero(detect("argmax", y, proba=proba).flagged).tolist() == [40, 41, 42, 43]
    assert np.flatnonzero(detect("cleanlab", y, proba=proba).flagged).tolist() == [40]


def test_ours_needs_a_margin_where_cleanlab_does_not() -> None:
    # Class 1's own items average p=0.55, so cleanlab's per-class threshold accepts item 40
    # (margin 0.1) as a confident class-1 item; ours requires a margin of 0.2.
    proba = np.array([[0.6, 0.4]] * 20 + [[0.45, 0.55]] * 21 + [[0.1, 0.9]])
    y = np.array([0] * 20 + [1] * 20 + [0, 0])
    assert np.flatnonzero(detect("cleanlab", y, proba=proba).flagged).tolist() == [40, 41]
    assert np.flatnonzero(detect("ours", y, proba=proba).flagged).tolist() == [41]


def test_ours_second_view_on_features() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack(
        [rng.normal([3, 0], 0.5, (25, 2)), rng.normal([-3, 0], 0.5, (25, 2)), [[-3, 0.2]]]
    )
    y = np.array([0] * 25 + [1] * 25 + [0])
    for method in ("argmax", "cleanlab", "ours"):
        det = detect(method, y, features=x, n_classes=2)
        assert np.flatnonzero(det.flagged).tolist() == [50], method
        assert det.suggested[50] == 1


def test_input_errors() -> None:
    with pytest.raises(LabelError, match="2 texts but 1 labels"):
        correct_labels(["a", "b"], ["x"], backbone="hashing")
    with pytest.raises(LabelError, match="two classes"):
        correct_labels(["a", "b", "c"], ["x", "x", "x"], backbone="hashing")
    with pytest.raises(LabelError, match="folds"):
        correct_labels(["a", "b", "c"], ["x", "y", "x"], backbone="hashing", folds=5)


def _flagged_decision() -> LabelDecision:
    return LabelDecision(
        index=0,
        old_label="neuro",
        new_label="neuro",
        suggested_label="cardio",
        flagged=True,
        action="flag",
        probabilities={"cardio": 0.8, "gi": 0.05, "neuro": 0.15},
        self_confidence=0.15,
        margin=0.65,
        method="ours",
        backbone="hashing",
        reason="confident learning",
    )


def test_adjudication_prompt_renders() -> None:
    system, user = adjudication_messages(
        "Troponin rose after chest pain.", _flagged_decision(), {"cardio": "heart disease"}
    )
    assert ADJUDICATION_PROMPT_VERSION == "adjudicate-v1"
    assert "spelled exactly as listed" in str(system.content)
    text = str(user.content)
    assert "- cardio: heart disease\n- gi\n- neuro" in text
    assert "<text>\nTroponin rose after chest pain.\n</text>" in text
    assert "Given label: neuro\nClassifier's suggestion: cardio (probability 0.80)" in text


def test_llm_adjudication_is_recorded() -> None:
    kept = _flagged_decision()
    plain = kept.model_copy(update={"index": 1, "flagged": False, "action": "keep"})
    relabel = kept.model_copy(update={"index": 2})
    unsure = kept.model_copy(update={"index": 3})
    chat = fake_chat(
        [
            Adjudication(rationale="seizure words", label="neuro"),
            Adjudication(rationale="troponin", label="cardio"),
            Adjudication(rationale="cannot tell", label="uncertain"),
        ]
    )
    llm = StructuredLLM(chat, name="fake", method="json_mode")
    texts = ["t0", "t1", "t2", "t3"]
    out = asyncio.run(adjudicate(texts, [kept, plain, relabel, unsure], llm, concurrency=1))
    assert len(chat.calls) == 3, "only flagged items go to the LLM"
    assert out[0].action == "keep" and out[0].new_label == "neuro"
    assert out[0].adjudication is not None and out[0].adjudication.label == "neuro"
    assert out[1] == plain
    assert out[2].action == "relabel" and out[2].new_label == "cardio"
    assert "LLM adjudication chose cardio" in out[2].reason
    assert out[3].action == "flag" and out[3].new_label == "neuro"
    assert out[3].adjudication is not None and "uncertain" in out[3].reason


def test_adjudication_accepts_a_plain_chat_model() -> None:
    chat = fake_chat([Adjudication(rationale="heart words", label="cardio")])
    (out,) = asyncio.run(adjudicate(["troponin"], [_flagged_decision()], chat))
    assert out.action == "relabel" and out.new_label == "cardio" and len(chat.calls) == 1


def test_embedding_head_scores_augmented_training_sets() -> None:
    from clinsynth.finetune.classification import score_embedding_head
    from clinsynth.finetune.errors import DatasetError

    rng = np.random.default_rng(1)
    gold = rng.normal([2, 0], 0.3, (4, 2)), rng.normal([-2, 0], 0.3, (4, 2))
    synthetic = rng.normal([2, 1], 0.3, (10, 2)), rng.normal([-2, 1], 0.3, (10, 2))
    x_eval = np.vstack([rng.normal([2, 0], 0.3, (10, 2)), rng.normal([-2, 0], 0.3, (10, 2))])
    y_eval = ["a"] * 10 + ["b"] * 10
    x_train = np.vstack([gold[0], gold[1], synthetic[0], synthetic[1]])
    y_train = ["a"] * 4 + ["b"] * 4 + ["a"] * 10 + ["b"] * 10
    scores = score_embedding_head(x_train, y_train, x_eval, y_eval, ["a", "b"])
    assert scores["accuracy"] == 1.0 and scores["macro_f1"] == 1.0 and scores["n"] == 20
    wrong = ["b"] * 4 + ["a"] * 4 + ["b"] * 10 + ["a"] * 10
    assert score_embedding_head(x_train, wrong, x_eval, y_eval, ["a", "b"])["accuracy"] == 0.0
    with pytest.raises(DatasetError, match="not in the label order"):
        score_embedding_head(x_train, y_train, x_eval, ["c"] * 20, ["a", "b"])


def test_oof_proba_takes_a_sparse_matrix_and_gives_the_dense_result() -> None:
    import scipy.sparse as sp

    from clinsynth.tools.labels import oof_proba

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)) * (rng.random((40, 6)) > 0.5)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    dense = oof_proba(x, y, 2, folds=4, seed=1)
    assert np.allclose(oof_proba(sp.csr_matrix(x), y, 2, folds=4, seed=1), dense, atol=1e-6)
