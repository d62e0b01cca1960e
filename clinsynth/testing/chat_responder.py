"""Scripted replies for the chat agent tests (stub server responder).

One responder plays both models, deciding every reply from the request alone:

- a request that offers the chat tools (``generate_items`` …) is the chat model: it reads the
  last user message, looks at which tool results already follow it, and either calls the
  next tool of its script or answers from the tool results (as a real model would);
- any other request is the ``qa`` recipe's generator or reasoner. Its questions are built
  to a *designed* difficulty level: a question made of ``rare`` words absent from the
  document plus ``reused`` words of the quoted answer. The first attempt is level 0; when the
  critic's feedback says "too easy: difficulty X …", the next attempt takes the first level
  designed above X. So a higher target is met only after the real critic measured the
  easier attempt and sent it back; nothing here reports or fakes a measurement.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from clinsynth.evaluators.text import content_words, stem_word
from clinsynth.testing.qa_responder import (
    _RARE,
    _document,
    _user_text,
    exact_quote,
    qa_reply,
    schema_name,
)

LEVELS: tuple[tuple[int, int], ...] = ((6, 3), (8, 1), (9, 0))
"""(rare words, reused answer words) per level; designed difficulty 1 - reused / total."""

CHAT_TOOLS = {"search_corpus", "generate_items"}
"""A request offering these tools comes from a chat agent (ours, or a host's with as_tools)."""


def designed_difficulty(level: int) -> float:
    rare, reused = LEVELS[level]
    return 1 - reused / (rare + reused)


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def level_from_feedback(text: str) -> int:
    """Level 0 on a first attempt; above the measured difficulty when told it was too easy."""
    match = re.search(r"too easy: difficulty ([0-9.]+)", text)
    if match is None:
        return 0
    measured = float(match.group(1))
    for level in range(len(LEVELS)):
        if designed_difficulty(level) > measured + 1e-6:
            return level
    return len(LEVELS) - 1


def graded_question(document: str, answer: str, level: int, salt: str = "") -> str:
    """A question of ``level``: rare words plus words reused from ``answer``."""
    rare_n, reused_n = LEVELS[level]
    reused: list[str] = []
    seen: set[str] = set()
    for word in content_words(answer, stem=False):
        stem = stem_word(word)
        if word.isalpha() and len(word) > 3 and stem not in seen:
            seen.add(stem)
            reused.append(word)
    h = _digest(document + salt + str(level))
    order = sorted(_RARE, key=lambda w: _digest(f"{h}:{w}"))
    rare = order[:rare_n]
    return "Which " + " ".join(rare + reused[:reused_n]) + "?"


def qa_generator_reply(request: dict[str, Any]) -> str:
    """The ``qa`` generator's reply, or the plain ``qa`` script for other steps."""
    if schema_name(request) != "QADraft":
        return qa_reply(request, "accept")
    text = _user_text(request)
    document = _document(text)
    answer = "unanswerable" if "NOT answerable" in text else exact_quote(document)
    # The whole prompt (topic, target, feedback) seeds the wording, so a new ask gets new words.
    question = graded_question(document, answer, level_from_feedback(text), salt=text)
    return json.dumps({"question": question, "answer": answer})


# --- the chat model ------------------------------------------------------------------------


def _first_count(messages: list[dict[str, Any]]) -> int:
    for m in messages:
        if m.get("role") == "user":
            match = re.search(r"give me (\d+)", str(m.get("content")), re.I)
            if match:
                return int(match.group(1))
    return 3


def plan(text: str, messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls this scripted model makes for one user message, in order."""
    ask = re.search(r"give me (\d+) (\w+) questions about (.+)", text, re.I)
    if ask:
        n, level, topic = int(ask.group(1)), ask.group(2).lower(), ask.group(3).strip(" .?!")
        return [
            ("search_corpus", {"query": topic, "k": 4}),
            ("generate_items", {"topic": topic, "n": n, "difficulty": level}),
        ]
    n = _first_count(messages)
    if re.search(r"\bharder\b", text, re.I):
        return [("generate_items", {"harder": True, "n": n})]
    more = re.search(r"more about (.+)", text, re.I)
    if more:
        return [("generate_items", {"focus": more.group(1).strip(" .?!"), "n": n})]
    if re.search(r"\bsave\b", text, re.I):
        return [("save_items", {"format": "both"})]
    return []


def _graded(value: float | None) -> str:
    return "not graded" if value is None else f"{value:.2f}"


def _describe(results: dict[str, str]) -> str:
    """The final answer, written from the tool results."""
    if "generate_items" in results:
        data = json.loads(results["generate_items"]) if results["generate_items"][:1] == "{" else {}
        if not data:
            return f"Generation failed: {results['generate_items']}"
        if data.get("difficulty_measurable") is False:
            return str(data["message"])
        stats = data.get("measured_difficulty") or {}
        previous = data.get("previous_measured_difficulty")
        lines = [
            f"{data['accepted']} accepted items on '{data['topic']}' "
            f"(target {data['difficulty_target']}; measured difficulty mean "
            f"{_graded(stats.get('mean'))}, previous batch {previous}):"
        ]
        for i, item in enumerate(data["items"], 1):
            scores = item["scores"]
            fields = item.get("item") or item  # as_tools results nest the item
            lines.append(
                f"{i}. {fields['question']} — answer: {fields['answer']} "
                f"(difficulty {_graded(item['difficulty'])}, overlap "
                f"{scores.get('lexical_overlap', 0):.2f}, attempts {item['attempts']})"
            )
        if stats:
            lines.append("They are hard because few of their words come from the answer sentence.")
        else:
            lines.append("Their difficulty was not graded: no validated measure without a reader.")
        return "\n".join(lines)
    if "save_items" in results:
        return f"Saved: {results['save_items']}"
    return "Tell me a topic and how many questions you want."


def chat_reply(request: dict[str, Any]) -> dict[str, Any]:
    """The chat model's next step: the next scripted tool call, or the final answer."""
    messages = request["messages"]
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    text = str(messages[last_user].get("content"))
    after = messages[last_user + 1 :]
    called: dict[str, str] = {}
    for m in after:
        for call in m.get("tool_calls") or []:
            called[call["id"]] = call["function"]["name"]
    results = {
        called[m["tool_call_id"]]: str(m.get("content"))
        for m in after
        if m.get("role") == "tool" and m.get("tool_call_id") in called
    }
    turn = sum(1 for m in messages if m.get("role") == "user")
    for name, args in plan(text, messages[:last_user]):
        if name not in called.values():
            call = {
                "id": f"call_{turn}_{name}",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            return {"content": "", "tool_calls": [call]}
    return {"content": _describe(results)}


def respond(request: dict[str, Any]) -> str | dict[str, Any]:
    """The stub server's reply to any request of a chat session."""
    tools = {t.get("function", {}).get("name") for t in request.get("tools") or []}
    if tools >= CHAT_TOOLS:
        return chat_reply(request)
    return qa_generator_reply(request)


def make_responder(arg: str = "") -> Any:
    """Factory for ``python -m clinsynth.testing.stub_server --responder`` (``arg`` unused)."""
    return respond
