"""Scripted replies of the ``qa`` recipe for the stub server and fake models.

The reply is decided from the request alone (schema name, document, feedback block), so it
works under concurrency and across process restarts. Scenarios:

- ``accept``: a low-overlap question answered by an exact quote of the document;
- ``revise``: first a question that copies the document, then (with feedback) a good one;
- ``relabel``: an answer that is not in the document (the corrector makes it unanswerable);
- ``reject``: always copies the document, so it is rejected after ``max_attempts``;
- ``malformed``: broken JSON first, then a good item;
- ``mixed``: the scenario is chosen from a hash of the document.

Answers come from the separate distillation call (schema ``QAAnswer``): an exact quote, the
unlocatable answer of the ``relabel`` scenario, or "unanswerable" for questions the generator
wrote as unanswerable (they end with ``UNANSWERABLE_MARK``).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from clinsynth.testing.stub_replies import requested_schema

SCENARIOS = ("accept", "revise", "relabel", "reject", "malformed")
UNANSWERABLE_MARK = " according to the missing records?"
UNLOCATED_ANSWER = "a finding that this record never mentions"

# Words unlikely to occur in clinical notes: they keep questions low-overlap and distinct.
_RARE = (
    "lantern",
    "quartz",
    "meadow",
    "violet",
    "harbor",
    "saffron",
    "glacier",
    "cobalt",
    "orchard",
    "tundra",
    "marble",
    "falcon",
    "juniper",
    "canyon",
    "ember",
    "willow",
    "pebble",
    "comet",
    "velvet",
    "thistle",
    "aurora",
    "basalt",
    "cedar",
    "dune",
    "lagoon",
    "maple",
    "nebula",
    "opal",
    "prairie",
    "quill",
    "reef",
    "sparrow",
    "topaz",
    "umber",
    "vortex",
    "walnut",
    "yarrow",
    "zephyr",
    "beacon",
    "cinder",
)


def schema_name(request: dict[str, Any]) -> str:
    """The name of the structured-output schema the request asks for."""
    named = requested_schema(request)
    if named is not None:
        return named
    text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
    if "Question to answer from the document:" in text:
        return "QAAnswer"
    return "QADraft" if "Write one question" in text else "ClinicalSummary"


def _user_text(request: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "user"
    )


def _document(text: str) -> str:
    match = re.search(r"<document>\n(.*?)\n</document>", text, re.S)
    return match.group(1) if match else ""


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def scenario_for(document: str, mode: str) -> str:
    """The scenario of one document under ``mode``."""
    if mode != "mixed":
        return mode
    return ("accept", "accept", "revise", "relabel", "reject", "malformed")[_digest(document) % 6]


def good_question(document: str) -> str:
    """A question whose content words are (almost) absent from the document.

    Four distinct rare words picked by the document's digest: C(40, 4) word sets per template,
    so thousands of documents rarely share a question (a shared one is a near duplicate).
    """
    h = _digest(document)
    a, b, c, d = sorted(_RARE, key=lambda w: _digest(f"{h}:{w}"))[:4]
    templates = (
        "Under the {a} {b} framing, what single conclusion would a {d} reviewer draw about {c}?",
        "If {c} were the codename, which {d} remark best explains the {a} {b} situation?",
        "Thinking of {b} and {c}, what would a {d} outsider infer first about {a}?",
        "Which conclusion links the {c} clue with the {a} {b} idea and the {d} note?",
        "Why might a {b} observer single out this {d} detail about {c} and {a}?",
    )
    return templates[h % len(templates)].format(a=a, b=b, c=c, d=d)


def copied_question(document: str) -> str:
    """A question that reuses the document's own words."""
    words = re.findall(r"[A-Za-z][A-Za-z-]+", document)[:14]
    return "Regarding " + " ".join(words) + "?"


def exact_quote(document: str) -> str:
    """A short exact quote: the first sentence-like span of the document."""
    body = document.split("\n", 1)[1] if document.startswith("#") and "\n" in document else document
    sentence = re.split(r"(?<=[.!?])\s", body.strip(), maxsplit=1)[0]
    return sentence[:160].strip()


def distilled_answer(text: str, mode: str) -> str:
    """The distiller's answer for the question in ``text`` (a distillation request)."""
    document = _document(text)
    match = re.search(r"Question to answer from the document: (.*)", text)
    question = match.group(1).strip() if match else ""
    if question.endswith(UNANSWERABLE_MARK.strip()):
        return "unanswerable"
    if scenario_for(document, mode) == "relabel":
        return UNLOCATED_ANSWER
    return exact_quote(document)


def qa_reply(request: dict[str, Any], mode: str = "accept") -> str:
    """The JSON content the scripted model returns for one request."""
    text = _user_text(request)
    document = _document(text)
    if schema_name(request) == "QAAnswer":
        return json.dumps({"answer": distilled_answer(text, mode)})
    if schema_name(request) == "ClinicalSummary":
        first = exact_quote(document)
        return json.dumps(
            {
                "history": [],
                "conditions": [first[:60]],
                "symptoms": [],
                "findings": [],
                "diagnostics": [],
                "treatments": [],
            }
        )
    scenario = scenario_for(document, mode)
    revised = "<feedback>" in text
    answer = exact_quote(document)
    question = good_question(document)
    if scenario == "reject" or (scenario == "revise" and not revised):
        question = copied_question(document)
    if "NOT answerable" in text:
        answer = "unanswerable"
        question = question.rstrip("?") + UNANSWERABLE_MARK
    if scenario == "relabel":
        answer = UNLOCATED_ANSWER
    if scenario == "malformed" and not revised:
        return '{"question": "Which finding matters most here?", "answer": '
    return json.dumps({"question": question, "answer": answer})


def make_responder(mode: str = "accept") -> Any:
    """A stub-server responder for ``mode``."""

    def responder(request: dict[str, Any]) -> str:
        return qa_reply(request, mode)

    return responder
