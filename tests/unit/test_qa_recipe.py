"""The qa recipe: variants, the answer-distillation step in the generator node, the reader-based
label re-check, and the overlap gate per variant."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from clinsynth.agents.critic import make_critic
from clinsynth.agents.deps import Deps
from clinsynth.agents.generator import make_generator
from clinsynth.agents.reasoner import make_reasoner
from clinsynth.config import ConfigError, RunConfig
from clinsynth.evaluators.difficulty import ReaderAnswer, ReaderDifficulty
from clinsynth.llm import LLMRouter, StructuredLLM, UsageMeter
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.registry import AcceptedRegistry
from clinsynth.memory.store import VectorStore
from clinsynth.recipes import get_recipe
from clinsynth.recipes.qa import QARecipe
from clinsynth.schemas import SourceChunk, Task
from tests.support.fakes import FakeChat, fake_chat

DOC = (
    "The patient was admitted with decompensated heart failure. Echocardiography showed an "
    "ejection fraction of 30 percent. Furosemide was given intravenously and the swelling "
    "of both legs improved over three days."
)
DRAFT = {"question": "Which measurement tells us how weakly the pump was working?", "answer": "x"}
QUOTE = {"answer": "an ejection fraction of 30 percent"}


class StubReader:
    """A reader with a fixed answer, counting its calls."""

    def __init__(self, text: str | None, confidence: float, abstained: bool = False) -> None:
        self.reply = ReaderAnswer(text=text, abstained=abstained, confidence=confidence)
        self.calls = 0

    def answer(self, question: str, context: str) -> ReaderAnswer:
        self.calls += 1
        return self.reply


def make_deps(tmp_path: Path, replies: list[Any], recipe: QARecipe) -> tuple[Deps, FakeChat]:
    chat = fake_chat(replies)
    llm = StructuredLLM(chat, name="fake", method="json_schema", meter=UsageMeter())
    emb = HashingEmbedder()
    deps = Deps(
        llm=LLMRouter({"generator": llm}, default="generator"),
        store=VectorStore(tmp_path, emb, collection="corpus"),
        registry=AcceptedRegistry(emb),
        recipe=recipe,
        run=RunConfig.model_validate({"n": 1}),
    )
    return deps, chat


def run(awaitable: Any) -> Any:
    return asyncio.run(awaitable)


def state(label: str = "answerable", **extra: Any) -> Any:
    task = Task(id="qa-0-000000", index=0, recipe="qa", label=label)
    return {
        "task": task.model_dump(),
        "chunks": [SourceChunk(id="doc#0", text=DOC).model_dump()],
        "attempts": [],
        "usage": {},
        **extra,
    }


def test_generator_distils_the_answer_in_a_second_call(tmp_path: Path) -> None:
    deps, chat = make_deps(tmp_path, [DRAFT, QUOTE], QARecipe({"unanswerable_share": 0}))
    out = run(make_generator(deps)(state(reasoning={})))
    item = out["candidate"]
    assert item["answer"] == QUOTE["answer"] and item["draft_answer"] == "x"
    assert DOC[item["answer_start"] : item["answer_end"]] == QUOTE["answer"]
    assert out["usage"]["calls"] == 2 and out["usage"]["input_tokens"] == 20
    distill = str(chat.calls[1][-1].content)
    assert DRAFT["question"] in distill and "<document>" in distill
    assert '"x"' not in distill, "the distiller must not see the generator's answer"
    assert chat.call_kwargs[1].get("temperature") == 0.0


def test_distilled_unanswerable_and_unlocated_answers(tmp_path: Path) -> None:
    deps, _ = make_deps(
        tmp_path, [DRAFT, {"answer": "Unanswerable"}, DRAFT, {"answer": "not there"}], QARecipe()
    )
    gen = make_generator(deps)
    item = run(gen(state()))["candidate"]
    assert item["answer"] == "unanswerable" and item["answerable"] is False
    item = run(gen(state()))["candidate"]
    assert item["answerable"] is True and item["answer_start"] is None  # → relabel by critic


def test_malformed_distillation_is_kept_like_a_malformed_draft(tmp_path: Path) -> None:
    deps, _ = make_deps(tmp_path, [DRAFT, '{"answer": ', '{"answer": '], QARecipe())
    out = run(make_generator(deps)(state()))
    assert out["candidate"] is None and out["usage"]["calls"] == 3  # draft + 2 parse tries
    (attempt,) = out["attempts"]
    assert attempt["error"].startswith("distiller step:") and attempt["raw_output"]
    assert attempt["item"]["question"] == DRAFT["question"]
    report = run(make_critic(deps)({**state(), **out}))["report"]
    assert report["verdict"] == "revise" and "distiller step" in report["reasons"][0]


def test_without_distillation_the_draft_answer_is_used(tmp_path: Path) -> None:
    recipe = QARecipe({"distill_answers": False})
    deps, chat = make_deps(tmp_path, [{**DRAFT, **QUOTE}], recipe)
    out = run(make_generator(deps)(state()))
    assert out["candidate"]["answer"] == QUOTE["answer"] and "draft_answer" not in out["candidate"]
    assert out["usage"]["calls"] == 1 and len(chat.calls) == 1


@pytest.mark.parametrize("variant", ["direct", "no_overlap"])
def test_non_summary_variants_skip_the_reasoner(tmp_path: Path, variant: str) -> None:
    deps, chat = make_deps(tmp_path, [], QARecipe({"variant": variant}))
    assert run(make_reasoner(deps)(state())) == {"reasoning": None}
    assert chat.calls == []
    chunks = [SourceChunk(id="doc#0", text=DOC)]
    msgs = deps.recipe.generator_messages(Task.model_validate(state()["task"]), chunks, None, [])
    assert "Structured summary" not in str(msgs[1].content)


def test_bad_variant_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="variant"):
        get_recipe("qa", {"variant": "summary+direct"})
    with pytest.raises(ConfigError, match="reader_path"):
        get_recipe("qa", {"reader_path": "/nonexistent/reader"})


COPYING = {
    "question": "Echocardiography showed what ejection fraction in heart failure?",
    "context": DOC,
    "answer": "an ejection fraction of 30 percent",
    "answerable": True,
}


@pytest.mark.parametrize(
    ("options", "passed"),
    [
        ({"variant": "summary+no_overlap"}, False),
        ({"variant": "no_overlap"}, False),
        ({"variant": "direct"}, True),
        ({"variant": "summary"}, True),
        ({"variant": "direct", "gate_overlap": True}, False),
        ({"variant": "no_overlap", "gate_overlap": False}, True),
    ],
)
def test_overlap_gate_follows_the_variant(options: dict[str, Any], passed: bool) -> None:
    recipe = QARecipe(options)
    task = Task(id="t", index=0, recipe="qa", label="answerable")
    (overlap,) = [c for c in recipe.checks(task, COPYING, []) if c.name == "lexical_overlap"]
    assert overlap.passed is passed and overlap.score > 0.5
    assert ("not gated" in overlap.reason) is passed


def test_difficulty_reason_names_the_scorer() -> None:
    task = Task(id="t", index=0, recipe="qa", label="answerable", difficulty="hard")
    lexical = next(c for c in QARecipe().checks(task, COPYING, []) if c.name == "difficulty")
    # The lexical proxy is below the validated-AUC bar: recorded, not graded, and says why.
    assert lexical.passed and lexical.details["graded"] is False
    assert "no reader configured" in lexical.reason and "not graded" in lexical.reason
    assert "clinsynth train-reader" in lexical.reason
    reader = StubReader("ejection fraction of 30 percent", 0.95)
    scorer = ReaderDifficulty(reader, validated_auc=0.75)
    checked = [
        c
        for c in QARecipe(reader=reader, scorer=scorer).checks(task, COPYING, [])
        if c.name == "difficulty"
    ]
    assert not checked[0].passed and "too easy" in checked[0].reason
    assert "correctly answered 'ejection fraction of 30 percent' with confidence 0.95" in (
        checked[0].reason
    )


UNANSWERABLE_ITEM = {
    "question": "Which allergy did the patient report?",
    "context": DOC,
    "answer": "unanswerable",
    "answerable": False,
    "answer_start": None,
    "answer_end": None,
}
TASK = Task(id="t", index=0, recipe="qa", label="unanswerable")


def test_reader_recheck_rejects_confidently_answered_unanswerable() -> None:
    recipe = QARecipe(reader=StubReader("Furosemide", 0.9))
    out = recipe.correct_label(TASK, UNANSWERABLE_ITEM)
    assert out.item is None and out.change is not None
    assert out.change.method == "reader-recheck" and out.change.probability == 0.9
    assert "Furosemide" in (out.reason or "")


def test_reader_recheck_can_relabel_with_the_reader_span() -> None:
    recipe = QARecipe({"on_reader_disagrees": "relabel"}, reader=StubReader("Furosemide", 0.9))
    out = recipe.correct_label(TASK, UNANSWERABLE_ITEM)
    assert out.item is not None and out.item["answerable"] is True
    assert DOC[out.item["answer_start"] : out.item["answer_end"]] == "Furosemide"
    assert out.change is not None and out.change.new == "Furosemide"


@pytest.mark.parametrize(
    "reader",
    [StubReader("Furosemide", 0.79), StubReader(None, 0.99, abstained=True)],
)
def test_reader_recheck_keeps_items_below_confidence_or_abstained(reader: StubReader) -> None:
    out = QARecipe(reader=reader).correct_label(TASK, UNANSWERABLE_ITEM)
    assert out.item == UNANSWERABLE_ITEM and out.change is None and reader.calls == 1


def test_recheck_needs_a_reader_and_leaves_answerable_items() -> None:
    assert QARecipe().correct_label(TASK, UNANSWERABLE_ITEM).item == UNANSWERABLE_ITEM
    reader = StubReader("Furosemide", 0.99)
    item = dict(UNANSWERABLE_ITEM, answerable=True, answer="Furosemide")
    assert QARecipe(reader=reader).correct_label(TASK, item).item == item and reader.calls == 0


@pytest.mark.parametrize(
    ("score", "null", "abstain", "confidence"),
    [
        (5.0, 0.0, False, 0.9933),  # clear answer
        (0.0, 0.0, False, 0.5),  # coin flip
        (0.0, 5.0, True, 0.9933),  # clear abstention
        (None, 1.0, True, 1.0),  # no valid span at all
    ],
)
def test_reader_confidence_from_span_and_null_scores(
    score: float | None, null: float, abstain: bool, confidence: float
) -> None:
    from clinsynth.finetune import QAPrediction
    from clinsynth.recipes.qa.reader import confidence_of

    pred = QAPrediction(
        id="q",
        text=None if score is None else "x",
        score=score,
        null_score=null,
        is_unanswerable=abstain,
    )
    assert confidence_of(pred) == pytest.approx(confidence, abs=1e-4)
