"""What a chat session knows: its state, the versioned system prompt, escalation and focus."""

from __future__ import annotations

from typing import Any

from langgraph.graph import MessagesState

from clinsynth.config import DIFFICULTY_BANDS, parse_band

CHAT_PROMPT_VERSION = "chat-v2"

CHAT_SYSTEM = (
    "You help clinicians and ML engineers build synthetic clinical training data. Use the "
    "tools: search_corpus to look at the source passages, generate_items to make items "
    "through the generation graph (every item is checked by a critic that measures it), "
    "save_items to export the session's items. When the user asks for harder items, call "
    "generate_items with harder=true; to narrow the subject (for example 'more about "
    "dosing'), pass focus. After generating, list the accepted items and explain why they "
    "are hard using their measured scores (difficulty: 0 easy … 1 hard; lexical_overlap: "
    "share of the question's words copied from the passage). A difficulty of null means it "
    "was not graded (no validated measure): then do not call the items hard or harder, and "
    "when generate_items says difficulty cannot be measured, tell the user so and pass on "
    "its command. Never invent items or scores."
)

SESSION_BLOCK = (
    "\n\nSession so far: topic: {topic}; difficulty target: {target}; measured difficulty "
    "of the last batch: {measured}; batches generated: {batches}."
)

ESCALATION_STEP = 0.1
"""How far above the last measured difficulty "harder" puts the new minimum."""
MAX_TARGET_MIN = 0.95
"""The highest minimum difficulty an escalation asks for."""


class ChatState(MessagesState):
    """Messages plus what the session has learnt (all plain data, checkpointed per thread)."""

    topic: str | None
    difficulty_target: str | None
    last_difficulty: float | None
    runs: list[str]


def system_prompt(state: ChatState | dict[str, Any]) -> str:
    """The system message: the fixed instructions and the session's status."""
    measured = state.get("last_difficulty")
    return CHAT_SYSTEM + SESSION_BLOCK.format(
        topic=state.get("topic") or "none yet",
        target=state.get("difficulty_target") or "none yet",
        measured="none yet" if measured is None else f"{measured:.2f}",
        batches=len(state.get("runs") or []),
    )


def escalate(last_measured: float | None, current_target: str | None) -> str:
    """A difficulty target whose minimum lies above the last measured difficulty.

    Without a measurement it steps above the current target's minimum (default: "hard").
    The minimum is capped at :data:`MAX_TARGET_MIN`.
    """
    if last_measured is None:
        band = parse_band(current_target) or DIFFICULTY_BANDS["hard"]
        last_measured = band[0]
    low = min(round(last_measured + ESCALATION_STEP, 2), MAX_TARGET_MIN)
    return f"{low:.2f}-1.0"


def narrow(topic: str | None, focus: str | None) -> str | None:
    """The session topic narrowed to ``focus`` ("anticoagulation …: dosing")."""
    if not focus:
        return topic
    return f"{topic}: {focus}" if topic else focus
