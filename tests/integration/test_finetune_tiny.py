"""The fine-tuning tool end to end on a tiny random BERT built locally (offline, CPU)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clinsynth.finetune import (
    BackboneFallbackWarning,
    BackboneUnavailableError,
    ClassificationConfig,
    Classifier,
    DatasetError,
    QAConfig,
    QAExample,
    Reader,
    build_windows,
    compare_to_baselines,
    cross_val_proba,
    fallback_model_dir,
    load_squad_json,
    resolve_backbone,
    train_classifier,
    train_reader,
    train_with_baselines,
)
from clinsynth.finetune.qa_windows import SampledWindows
from clinsynth.testing.tiny_bert import save_tiny_bert

VOCAB_TEXT = """
the a patient has had fever cough pain rash virus drug dose trial was were is are of in and to
with after before day days week weeks mg treated given showed no yes what which when how many who
why good great fine bad awful poor outcome result symptom symptoms onset lasted for three five
seven ten twenty answer hospital admitted discharged
"""
WORDS = VOCAB_TEXT.split()
FILLER = "the patient was treated in hospital and the trial showed no result of the drug ."


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT (hidden 32) with a WordPiece vocab of the words above."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), [".", "?", ",", *WORDS])


def _long_example() -> QAExample:
    context = " ".join([FILLER] * 12) + " the fever lasted for seven days . " + FILLER
    answer = "seven days"
    return QAExample(
        id="long",
        question="how many days of fever ?",
        context=context,
        answer_text=answer,
        answer_start=context.index(answer),
    )


def _qa_cfg(backbone: Path, **kw: Any) -> QAConfig:
    base: dict[str, Any] = {
        "backbone": str(backbone),
        "max_length": 48,
        "doc_stride": 16,
        "max_query_length": 12,
        "batch_size": 8,
        "lr": 1e-3,
    }
    return QAConfig(**{**base, **kw})


# --- backbone resolution -------------------------------------------------------------------


def test_resolve_local_directory(tiny_bert: Path) -> None:
    resolved = resolve_backbone(str(tiny_bert))
    assert Path(resolved.path_or_name) == tiny_bert.resolve()
    assert not resolved.fell_back


def test_missing_local_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BackboneUnavailableError, match="not a model directory"):
        resolve_backbone(str(tmp_path / "nope"))


def test_uncached_hub_name_falls_back_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.warns(BackboneFallbackWarning, match="no-such-org/no-such-model"):
        resolved = resolve_backbone("no-such-org/no-such-model", cache_dir=tmp_path)
    assert resolved.fell_back
    assert Path(resolved.path_or_name) == fallback_model_dir()
    assert "FALLING BACK" in caplog.text


def test_fallback_disabled_raises(tmp_path: Path) -> None:
    with pytest.raises(BackboneUnavailableError, match="fallback is disabled"):
        resolve_backbone("no-such-org/no-such-model", allow_fallback=False, cache_dir=tmp_path)


def test_fallback_model_loads_with_new_heads() -> None:
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(
        fallback_model_dir(), local_files_only=True
    )
    assert model.config.model_type == "bert"


# --- classification ------------------------------------------------------------------------


def _toy_pairs(n: int) -> list[tuple[str, str]]:
    pos = ["good great fine", "great good outcome", "fine good result", "good fine great"]
    neg = ["bad awful poor", "awful bad outcome", "poor bad result", "bad poor awful"]
    return [(pos[i % 4], "pos") if i % 2 == 0 else (neg[i % 4], "neg") for i in range(n)]


def test_classifier_learns_separable_toy_set(tiny_bert: Path) -> None:
    cfg = ClassificationConfig(
        backbone=str(tiny_bert), epochs=15, batch_size=8, lr=2e-3, max_length=16, warmup_ratio=0
    )
    result = train_classifier(_toy_pairs(32), _toy_pairs(8), cfg)
    assert result.classifier.labels == ["neg", "pos"]
    assert result.metrics is not None
    assert result.metrics["accuracy"] == 1.0
    assert result.metrics["roc_auc"] == 1.0
    assert result.metrics["positive_label"] == "pos"
    proba = result.classifier.predict_proba(["good great", "awful poor", "fine"])
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert result.classifier.predict(["good great", "awful poor"]) == ["pos", "neg"]
    assert not result.backbone.fell_back
    assert "classifier" not in result.model_dump()


def test_cross_val_proba_covers_every_item(tiny_bert: Path) -> None:
    pairs = _toy_pairs(12)
    cfg = ClassificationConfig(backbone=str(tiny_bert), max_steps=2, batch_size=4, max_length=16)
    proba = cross_val_proba([t for t, _ in pairs], [y for _, y in pairs], cfg, folds=3)
    assert proba.shape == (12, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_val_f1_threshold_is_chosen_saved_and_used(tiny_bert: Path, tmp_path: Path) -> None:
    cfg = ClassificationConfig(
        backbone=str(tiny_bert), max_steps=2, batch_size=8, max_length=16, decision="val_f1"
    )
    result = train_classifier(_toy_pairs(20), _toy_pairs(8), cfg)
    assert result.n_train == 16  # 20 % of train held out to choose the threshold
    thr = result.threshold
    assert thr is not None and result.classifier.threshold == thr
    result.classifier.save(tmp_path / "clf")
    loaded = Classifier.load(tmp_path / "clf")
    assert loaded.threshold == thr and loaded.labels == ["neg", "pos"]
    texts = [t for t, _ in _toy_pairs(8)]
    p_pos = loaded.predict_proba(texts)[:, 1]
    assert loaded.predict(texts) == ["pos" if p >= thr else "neg" for p in p_pos]


def test_train_with_baselines_reports_and_judges_them(tiny_bert: Path) -> None:
    cfg = ClassificationConfig(backbone=str(tiny_bert), max_steps=1, batch_size=8, max_length=16)
    seen: list[int] = []
    res = train_with_baselines(
        _toy_pairs(24), _toy_pairs(8), cfg, [0, 1], on_result=lambda s, _: seen.append(s)
    )
    assert seen == [0, 1] and len(res["runs"]) == 2 and res["seeds"] == [0, 1]
    assert set(res["baselines"]) == {"majority", "tfidf_lr"}
    tfidf = res["baselines"]["tfidf_lr"]["summary"]
    assert tfidf["roc_auc"]["mean"] == 1.0  # the toy words separate the classes
    majority = res["baselines"]["majority"]["summary"]
    assert majority["roc_auc"]["mean"] == 0.5
    expected = compare_to_baselines(
        res["summary"], {k: v["summary"] for k, v in res["baselines"].items()}
    )
    assert res["vs_baselines"] == expected
    assert not res["vs_baselines"]["beats_all"]  # one step cannot beat AUC 1.0
    assert any("tfidf_lr 1.000" in f for f in res["vs_baselines"]["failures"])


def test_classifier_rejects_single_class(tiny_bert: Path) -> None:
    with pytest.raises(DatasetError, match="two classes"):
        train_classifier([("good", "pos")] * 4, None, ClassificationConfig(backbone=str(tiny_bert)))


# --- QA windows ----------------------------------------------------------------------------


def test_windows_label_answer_in_a_later_window(tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    example = _long_example()
    unanswerable = example.model_copy(
        update={"id": "none", "answer_text": None, "answer_start": None}
    )
    windows = build_windows([example, unanswerable], tokenizer, _qa_cfg(tiny_bert))
    mine = [w for w in windows if w.example_index == 0]
    assert len(mine) > 4
    positive = [i for i, w in enumerate(mine) if w.has_answer]
    assert positive and positive[0] > 2  # the answer sits in a later window
    for i in positive:
        w = mine[i]
        assert w.offsets is not None
        start, end = w.offsets[w.start_position, 0], w.offsets[w.end_position, 1]
        assert example.context[start:end] == "seven days"
        assert tokenizer.decode(w.input_ids[w.start_position : w.end_position + 1]) == "seven days"
    for w in mine:
        assert len(w.input_ids) <= 48
        if not w.has_answer:
            assert (w.start_position, w.end_position) == (0, 0)
    assert all(not w.has_answer for w in windows if w.example_index == 1)
    # consecutive windows overlap by doc_stride context tokens
    first, second = mine[0].offsets, mine[1].offsets
    assert first is not None and second is not None
    ctx1 = first[first[:, 0] >= 0]
    ctx2 = second[second[:, 0] >= 0]
    np.testing.assert_array_equal(ctx1[-16:], ctx2[:16])


def test_sampled_windows_draw_negatives_per_epoch(tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    windows = build_windows([_long_example()], tokenizer, _qa_cfg(tiny_bert), keep_offsets=False)
    n_pos = sum(w.has_answer for w in windows)
    data = SampledWindows(windows, negatives_per_example=2, max_windows=None, seed=0)
    assert len(data) == n_pos + 2
    drawn = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        labels = [(data[i]["start_positions"], data[i]["end_positions"]) for i in range(len(data))]
        assert sum(s > 0 for s, _ in labels) == n_pos
        drawn.add(tuple(id(data.window(i)) for i in range(len(data))))
    assert len(drawn) > 1
    assert len(SampledWindows(windows, None, max_windows=3, seed=0)) == 3


def test_reader_trains_and_predicts_valid_spans(tiny_bert: Path, tmp_path: Path) -> None:
    train = [_long_example()] + [
        QAExample(
            id=f"q{i}",
            question="how long was the fever ?",
            context=f"{FILLER} the fever lasted for {n} days . {FILLER}",
            answer_text=f"{n} days",
            answer_start=len(FILLER) + len(" the fever lasted for "),
        )
        for i, n in enumerate(["three", "five", "ten", "twenty"])
    ]
    reader = train_reader(train, _qa_cfg(tiny_bert, max_steps=6, max_answer_length=5))
    assert reader.train_stats["n_answer_windows_per_epoch"] >= len(train)
    unanswerable = QAExample(id="u", question="who was admitted ?", context=FILLER)
    examples = [*train, unanswerable]
    predictions = reader.predict(examples)
    assert [p.id for p in predictions] == [e.id for e in examples]
    for p, e in zip(predictions, examples, strict=True):
        assert p.text is not None and p.start is not None and p.end is not None
        assert e.context[p.start : p.end] == p.text
        assert p.is_unanswerable == (p.null_score - (p.score or 0) > 0)
        assert not p.with_threshold(math.inf).is_unanswerable
        assert p.with_threshold(-math.inf).answer is None
    scores = reader.evaluate(examples, null_threshold=math.inf)
    assert scores["n"] == 6 and scores["n_unanswerable"] == 1
    # An infinite threshold forces an answer everywhere, the unanswerable question included.
    assert scores["n_predicted_unanswerable"] == 0
    reader.save(tmp_path / "reader")
    again = Reader.load(tmp_path / "reader")
    assert [p.text for p in again.predict(examples)] == [p.text for p in predictions]
    assert again.backbone is not None and not again.backbone.fell_back


def test_load_squad_json(tmp_path: Path) -> None:
    data: dict[str, Any] = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": "fever lasted seven days .",
                        "qas": [
                            {
                                "id": "a",
                                "question": "how long ?",
                                "answers": [{"text": "seven days", "answer_start": 13}],
                            },
                            {"id": "b", "question": "who ?", "answers": [], "is_impossible": True},
                        ],
                    }
                ]
            }
        ]
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    a, b = load_squad_json(path)
    assert (a.answer_text, a.answer_start, a.answer_end) == ("seven days", 13, 23)
    assert b.answer_text is None and b.answer_start is None
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="bad question 'a'"):
        load_squad_json(path)
    with pytest.raises(DatasetError, match="not found"):
        load_squad_json(tmp_path / "missing.json")


def test_windows_cover_a_long_context_with_the_bundled_tokenizer() -> None:
    """Regression: tokenizers 0.23.1+ returns one overflow window at most when it truncates
    (huggingface/tokenizers#2091), so a long article was cut to its first ~500 tokens."""
    from transformers import AutoTokenizer

    from clinsynth.finetune import fallback_model_dir

    model_dir = fallback_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    context = " ".join(f"sentence {i} reports a finding." for i in range(600))
    answer = "sentence 577 reports"
    example = QAExample(
        id="long",
        question="which sentence?",
        context=context,
        answer_text=answer,
        answer_start=context.index(answer),
    )
    cfg = QAConfig(backbone=str(model_dir), max_length=384, doc_stride=128)
    windows = build_windows([example], tokenizer, cfg)
    n_tokens = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    room = 384 - len(tokenizer("which sentence?", add_special_tokens=False)["input_ids"]) - 3
    assert len(windows) == 1 + -(-(n_tokens - room) // (room - 128))
    last = windows[-1].offsets
    assert last is not None and last[last[:, 0] >= 0][-1, 1] == len(context)
    hits = [w for w in windows if w.has_answer]
    assert hits and hits[-1].offsets is not None
    span = hits[-1].offsets[[hits[-1].start_position, hits[-1].end_position]]
    assert context[span[0, 0] : span[1, 1]] == answer
    for w in windows:
        assert len(w.input_ids) <= 384
        assert tokenizer.decode(w.input_ids[:1]) == "[CLS]"
