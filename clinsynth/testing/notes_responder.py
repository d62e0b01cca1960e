"""Scripted replies of the ``notes`` recipe (and label adjudication) for the stub server.

The reply is decided from the request alone (schema, class, examples, feedback block), so it
works under concurrency and across restarts. A note is a deterministic shuffle of words drawn
from the request's few-shot examples: it carries the class's vocabulary (so a classifier can
learn from it) without copying a sentence. Scenarios:

- ``accept``: a good note on the first attempt;
- ``leak``: the first note names its own class; with feedback, a good one;
- ``short``: the first note is too short; with feedback, a good one;
- ``reject``: always too short, so the item is rejected after ``max_attempts``;
- ``mixed``: the scenario is chosen from a hash of the examples.

Adjudication requests are answered with the classifier's suggestion.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

from clinsynth.testing.stub_replies import requested_schema

SCENARIOS = ("accept", "leak", "short", "reject")
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{2,}")


def _user_text(request: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "user"
    )


def schema_name(request: dict[str, Any]) -> str:
    """The structured-output schema the request asks for."""
    named = requested_schema(request)
    if named is not None:
        return named
    return "Adjudication" if "Which label is correct?" in _user_text(request) else "NoteDraft"


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def scenario_for(examples: str, mode: str) -> str:
    """The scenario of one request under ``mode``."""
    if mode != "mixed":
        return mode
    return ("accept", "accept", "leak", "short")[_digest(examples) % 4]


def _class_line(text: str) -> tuple[str, str | None]:
    match = re.search(r"^Class: (.+?)(?: \((.+)\))?$", text, re.M)
    if not match:
        return "", None
    return match.group(1).strip(), match.group(2)


def note_text(examples: list[str], banned: set[str], seed: int, n_words: int = 60) -> str:
    """Words drawn from the examples in a seeded order, never more than 3 in source order."""
    words = [w for e in examples for w in _WORD.findall(e) if w.lower() not in banned]
    if not words:
        words = ["patient", "reports", "symptoms", "clinic", "follow-up"]
    rng = random.Random(seed)
    picked = [rng.choice(words) for _ in range(n_words)]
    return "Clinical summary: " + " ".join(picked) + "."


def notes_reply(request: dict[str, Any], mode: str = "accept") -> str:
    """The JSON content the scripted model returns for one request."""
    text = _user_text(request)
    if schema_name(request) == "Adjudication":
        match = re.search(r"Classifier's suggestion: (.+?) \(probability", text)
        label = match.group(1) if match else "uncertain"
        return json.dumps({"rationale": "the suggestion fits the text", "label": label})
    label, name = _class_line(text)
    examples = re.findall(r"<example>\n(.*?)\n</example>", text, re.S)
    banned = {w.lower() for w in re.split(r"[\s_/-]+", f"{label} {name or ''}") if w}
    scenario = scenario_for("".join(examples), mode)
    revised = "<feedback>" in text
    seed = _digest(text.split("<feedback>")[0])
    body = note_text(examples, banned, seed)
    if scenario == "reject" or (scenario == "short" and not revised):
        body = "Brief note."
    elif scenario == "leak" and not revised:
        body = f"{body} Final class: {name or label}."
    return json.dumps({"text": body})


def make_responder(mode: str = "accept") -> Any:
    """A stub-server responder for ``mode``."""

    def responder(request: dict[str, Any]) -> str:
        return notes_reply(request, mode)

    return responder
