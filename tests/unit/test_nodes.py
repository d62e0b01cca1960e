"""Each node of the generation graph with a scripted fake chat model, and the whole graph."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from clinsynth.agents.critic import make_critic
from clinsynth.agents.deps import Deps
from clinsynth.agents.finalize import make_accept, make_reject
from clinsynth.agents.generator import make_generator
from clinsynth.agents.label_corrector import make_label_corrector
from clinsynth.agents.reasoner import make_reasoner
from clinsynth.agents.retriever import make_retriever
from clinsynth.config import RunConfig
from clinsynth.graphs.generation import build_item_graph, initial_state, recursion_limit
from clinsynth.llm import LLMRouter, StructuredLLM, UsageMeter
from clinsynth.memory.cache import ReasoningCache
from clinsynth.memory.embeddings import HashingEmbedder
from clinsynth.memory.registry import AcceptedRegistry
from clinsynth.memory.store import VectorStore
from clinsynth.recipes import get_recipe
from clinsynth.schemas import CriticReport, SourceChunk, Task
from tests.support.fakes import FakeChat, fake_chat

DOC = (
    "The patient was admitted with decompensated heart failure. Echocardiography showed an "
    "ejection fraction of 30 percent. Furosemide was given intravenously and the swelling "
    "of both legs improved over three days."
)
SUMMARY = {
    "history": [],
    "conditions": ["heart failure"],
    "symptoms": ["leg swelling"],
    "findings": [],
    "diagnostics": ["ejection fraction 30 percent"],
    "treatments": ["furosemide"],
}
GOOD = {
    "question": "Which measurement tells us how weakly the pump was working?",
    "answer": "an ejection fraction of 30 percent",
}
COPIED = {
    "question": "Echocardiography showed what ejection fraction for heart failure?",
    "answer": "30 percent",
}


def make_deps(
    store_path: Path,
    replies: list[Any],
    *,
    run: RunConfig | None = None,
    cache: ReasoningCache | None = None,
) -> tuple[Deps, FakeChat]:
    chat = fake_chat(replies)
    llm = StructuredLLM(chat, name="fake", method="json_schema", meter=UsageMeter())
    emb = HashingEmbedder()
    deps = Deps(
        llm=LLMRouter({"generator": llm, "reasoner": llm}, default="generator"),
        store=VectorStore(store_path, emb, collection="corpus"),
        registry=AcceptedRegistry(emb),
        recipe=get_recipe("qa", {"unanswerable_share": 0.0, "distill_answers": False}),
        run=run or RunConfig(n=1),
        cache=cache,
    )
    return deps, chat


def base_state(label: str = "answerable", **extra: Any) -> dict[str, Any]:
    task = Task(id="qa-0-000000", index=0, recipe="qa", label=label)
    chunk = SourceChunk(id="doc#0", text=DOC)
    state: dict[str, Any] = dict(initial_state(task, 3, 0.0))
    state["chunks"] = [chunk.model_dump()]
    state.update(extra)
    return state


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_retriever_by_offset_and_by_topic(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, [])
    out = run(make_retriever(deps)(base_state()))
    assert len(out["chunks"]) == 1
    assert out["chunks"][0]["id"] == deps.store.chunk_at(0).id
    deps.run = RunConfig(n=1, topic="anticoagulation atrial fibrillation", k=3)
    task = Task(id="qa-0-000001", index=1, recipe="qa", topic=deps.run.topic)
    out = run(make_retriever(deps)({"task": task.model_dump()}))
    assert len(out["chunks"]) == 3
    assert "fibrillation" in " ".join(c["text"].lower() for c in out["chunks"])


def test_reasoner_summarises_and_uses_cache(demo_store_path: Path, tmp_path: Path) -> None:
    cache = ReasoningCache(tmp_path / "cache.sqlite")
    deps, chat = make_deps(demo_store_path, [SUMMARY], cache=cache)
    out = run(make_reasoner(deps)(base_state()))
    assert out["reasoning"] == SUMMARY
    assert out["usage"]["calls"] == 1
    assert "<document>" in str(chat.calls[0][-1].content)
    # qa has no reasoning cache key; a recipe that has one pays once.
    deps.recipe.reasoning_cache_key = lambda task, chunks: "k"  # type: ignore[method-assign]
    cache.put("k", {"conditions": ["cached"]})
    again = run(make_reasoner(deps)(base_state()))
    assert again == {"reasoning": {"conditions": ["cached"]}}
    assert len(chat.calls) == 1


def test_reasoner_failure_is_kept_not_raised(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, ["not json at all", "still not json"])
    out = run(make_reasoner(deps)(base_state()))
    assert "error" in out["reasoning"]


def test_generator_first_attempt_and_feedback(demo_store_path: Path) -> None:
    deps, chat = make_deps(demo_store_path, [GOOD, GOOD])
    gen = make_generator(deps)
    out = run(gen(base_state(reasoning=SUMMARY)))
    assert out["candidate"]["question"] == GOOD["question"]
    assert out["candidate"]["answer_start"] == DOC.index("an ejection fraction")
    assert [a["number"] for a in out["attempts"]] == [1]
    assert "<feedback>" not in str(chat.calls[0][-1].content)
    report = CriticReport(reasons=["lexical_overlap: reuses 'ejection'"], verdict="revise")
    state = base_state(reasoning=SUMMARY, attempts=out["attempts"], report=report.model_dump())
    out2 = run(gen(state))
    assert [a["number"] for a in out2["attempts"]] == [1, 2]
    prompt = str(chat.calls[1][-1].content)
    assert "<feedback>" in prompt and "reuses 'ejection'" in prompt
    assert out2["report"] is None


def test_generator_keeps_malformed_output(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, ['{"question": "Why', '{"question": "Why'])
    out = run(make_generator(deps)(base_state()))
    assert out["candidate"] is None
    attempt = out["attempts"][0]
    assert attempt["raw_output"].startswith('{"question"') and attempt["error"]


def critic_on(deps: Deps, item: dict[str, Any]) -> dict[str, Any]:
    finalized = deps.recipe.finalize(
        Task(id="t", index=0, recipe="qa"),
        deps.recipe.item_model.model_validate(item),
        [SourceChunk(id="doc#0", text=DOC)],
    )
    state = base_state(candidate=finalized, attempts=[{"number": 1, "item": finalized}])
    return run(make_critic(deps)(state))


def test_critic_accepts_good_item(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, [])
    out = critic_on(deps, GOOD)
    assert out["report"]["verdict"] == "accept"
    assert out["attempts"][-1]["report"] == out["report"]
    names = {c["name"] for c in out["report"]["checks"]}
    assert names == {
        "question_form",
        "lexical_overlap",
        "answer_validity",
        "difficulty",
        "privacy",
        "injection",
        "near_duplicate",
    }


def test_critic_revises_copied_question(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, [])
    out = critic_on(deps, COPIED)
    assert out["report"]["verdict"] == "revise"
    assert out["report"]["reasons"][0].startswith("lexical_overlap")


def test_critic_relabels_unlocated_answer(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, [])
    out = critic_on(deps, {**GOOD, "answer": "digoxin was stopped"})
    assert out["report"]["verdict"] == "relabel"


def test_critic_flags_near_duplicate_and_phi(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, [])
    deps.registry.add("earlier", GOOD["question"])
    out = critic_on(deps, GOOD)
    assert out["report"]["verdict"] == "revise"
    assert any("earlier" in r for r in out["report"]["reasons"])
    deps2, _ = make_deps(demo_store_path, [])
    phi = {**GOOD, "question": "Which pump measure was reported to john.doe@example.com today?"}
    out2 = critic_on(deps2, phi)
    assert any(r.startswith("privacy") for r in out2["report"]["reasons"])


def test_critic_on_malformed_attempt(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, [])
    state = base_state(candidate=None, attempts=[{"number": 1, "error": "invalid json"}])
    out = run(make_critic(deps)(state))
    assert out["report"]["verdict"] == "revise"
    assert "invalid json" in out["report"]["reasons"][0]


def test_label_corrector_relabels_and_records(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, [])
    item = {
        "question": "q?",
        "answer": "digoxin",
        "answerable": True,
        "context": DOC,
        "answer_start": None,
        "answer_end": None,
    }
    report = CriticReport(verdict="relabel", reasons=["answer_validity: not in document"])
    out = run(make_label_corrector(deps)(base_state(candidate=item, report=report.model_dump())))
    assert out["candidate"]["answer"] == "unanswerable"
    assert out["candidate"]["answerable"] is False
    assert out["label_changes"][0]["old"] == "digoxin"
    # An accepted item keeps its label when the recipe's corrector agrees.
    ok = CriticReport(verdict="accept")
    same = run(make_label_corrector(deps)(base_state(candidate=item, report=ok.model_dump())))
    assert same["candidate"] == item and same["label_changes"] == []


def test_label_corrector_can_reject(demo_store_path: Path) -> None:
    from clinsynth.recipes.base import Relabel

    deps, _ = make_deps(demo_store_path, [])
    deps.recipe.correct_label = lambda task, item: Relabel(  # type: ignore[method-assign]
        item=None, reason="classifier disagrees (p=0.97)"
    )
    out = run(
        make_label_corrector(deps)(
            base_state(candidate={"question": "q"}, report=CriticReport().model_dump())
        )
    )
    assert out["status"] == "rejected"
    assert out["reasons"] == ["label_corrector: classifier disagrees (p=0.97)"]


def test_accept_rechecks_duplicates_at_commit(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, [])
    item = {"question": GOOD["question"]}
    first = run(make_accept(deps)(base_state(candidate=item)))
    assert first == {"status": "accepted", "reasons": []}
    assert "qa-0-000000" in deps.registry
    other = base_state(candidate=item)
    other["task"] = dict(other["task"], id="qa-0-000009")
    second = run(make_accept(deps)(other))
    assert second["status"] == "rejected"
    assert second["reasons"][0].startswith("near_duplicate at commit")


def test_reject_explains_exhausted_attempts(demo_store_path: Path) -> None:
    deps, _ = make_deps(demo_store_path, [])
    report = CriticReport(verdict="revise", reasons=["lexical_overlap: too close"])
    out = run(make_reject(deps)(base_state(report=report.model_dump(), attempts=[{}, {}, {}])))
    assert out["reasons"] == ["lexical_overlap: too close", "gave up after 3 attempts"]
    assert run(make_reject(deps)(base_state(status="rejected"))) == {}


@pytest.mark.parametrize(
    ("replies", "status", "attempts"),
    [
        ([SUMMARY, GOOD], "accepted", 1),
        ([SUMMARY, COPIED, GOOD], "accepted", 2),
        ([SUMMARY, COPIED, COPIED, COPIED], "rejected", 3),
        ([SUMMARY, {**GOOD, "answer": "digoxin was stopped"}], "accepted", 1),
    ],
)
def test_whole_graph(tmp_path: Path, replies: list[Any], status: str, attempts: int) -> None:
    VectorStore(tmp_path, HashingEmbedder(), collection="corpus").add(
        [SourceChunk(id="doc#0", text=DOC)]
    )
    deps, chat = make_deps(tmp_path, replies)
    graph = build_item_graph(deps)
    state = base_state()
    state.pop("chunks")
    final = run(graph.ainvoke(state, {"recursion_limit": recursion_limit(3)}))
    assert final["status"] == status
    assert len(final["attempts"]) == attempts
    assert len(chat.calls) == len(replies)
    assert json.dumps(final)  # state stays plain JSON


def test_router_roles_fall_back_to_default() -> None:
    a = StructuredLLM(fake_chat([]), name="a")
    b = StructuredLLM(fake_chat([]), name="b")
    router = LLMRouter({"generator": a, "critic": b}, default="generator")
    assert router.for_role("reasoner") is a
    assert router.for_role("critic") is b
