"""Scripted replies of the ``trials`` recipe for the stub server, plus a made-up trial table.

Replies are decided from the request alone (schema, intervention, examples, feedback block),
so they work under concurrency and across restarts. Scenarios:

- ``accept``: a new trial of the requested intervention, written from shuffled short pieces of
  the examples (close to real trials, no long copied runs);
- ``copy``: first copies the first example verbatim (memorisation), then a good trial;
- ``wrong``: first names another intervention, then a good trial;
- ``mixed``: the scenario is chosen from a hash of the examples.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

from clinsynth.testing.stub_replies import requested_schema

SCENARIOS = ("accept", "copy", "wrong")
_RARE = ("lantern", "quartz", "meadow", "violet", "harbor", "saffron", "glacier", "cobalt")


def schema_name(request: dict[str, Any]) -> str:
    """The structured-output schema the request asks for."""
    named = requested_schema(request)
    if named is not None:
        return named
    text = _user_text(request)
    return "TrialReasons" if "List exactly five reasons" in text else "TrialContent"


def _user_text(request: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "user"
    )


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _examples(text: str) -> list[str]:
    return re.findall(r'<example n="\d+">\n(.*?)\n</example>', text, re.S)


def _intervention(text: str) -> str:
    match = re.search(r"of the intervention '([^']+)'", text) or re.search(
        r"^Intervention: (.+)$", text, re.M
    )
    return match.group(1).strip() if match else "unknown drug"


def _field(example: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", example, re.M)
    return match.group(1).strip() if match else ""


def good_trial(intervention: str, examples: list[str], salt: str) -> dict[str, Any]:
    """A new trial: short pieces of the examples' criteria, shuffled, plus distinct words."""
    h = _digest("\n".join(examples) + salt)
    rng = random.Random(h)
    words = " ".join(e.split("Eligibility criteria:", 1)[-1] for e in examples).split()
    pieces = [" ".join(words[i : i + 4]) for i in range(0, len(words), 4)]
    rng.shuffle(pieces)
    tag = " ".join(rng.sample(_RARE, 3))
    half = max(1, min(len(pieces), 24) // 2)
    conditions = _field(examples[0], "Conditions") if examples else "a condition"
    return {
        "title": f"A {tag} study of {intervention} in {conditions}",
        "phase": _field(examples[0], "Phase") if examples else "phase 2",
        "conditions": [c.strip() for c in conditions.split(";") if c.strip()],
        "interventions": [intervention, "best supportive care"],
        "eligibility_criteria": "Inclusion Criteria:\n- "
        + "\n- ".join(pieces[:half])
        + "\nExclusion Criteria:\n- "
        + "\n- ".join(pieces[half : 2 * half]),
        "outcome_measures": [f"{tag} response rate at week {8 + h % 20}"],
        "summary": f"This {tag} study tests {intervention} in adults.",
    }


def copied_trial(intervention: str, examples: list[str]) -> dict[str, Any]:
    """A trial whose criteria are the first example's criteria, verbatim."""
    criteria = examples[0].split("Eligibility criteria:", 1)[-1] if examples else ""
    trial = good_trial(intervention, examples, "copy")
    trial["eligibility_criteria"] = "Inclusion Criteria: Exclusion Criteria: " + criteria
    return trial


def trials_reply(request: dict[str, Any], mode: str = "accept") -> str:
    """The JSON content the scripted model returns for one request."""
    text = _user_text(request)
    intervention = _intervention(text)
    examples = _examples(text)
    if schema_name(request) == "TrialReasons":
        focus = "round" if "This is round" in text else "first"
        return json.dumps(
            {"reasons": [f"{focus} reason {i} for {intervention}" for i in range(1, 6)]}
        )
    scenario = mode
    if mode == "mixed":
        scenario = ("accept", "accept", "copy", "wrong")[_digest("".join(examples)) % 4]
    revised = "<feedback>" in text
    if scenario == "copy" and not revised:
        return json.dumps(copied_trial(intervention, examples))
    feedback = text.split("<feedback>", 1)[1] if revised else ""
    trial = good_trial(intervention, examples, feedback)
    if scenario == "wrong" and not revised:
        trial["interventions"] = ["some other compound"]
    return json.dumps(trial)


def make_responder(mode: str = "accept") -> Any:
    """A stub-server responder for ``mode``."""

    def responder(request: dict[str, Any]) -> str:
        return trials_reply(request, mode)

    return responder


_CRITERIA = (
    "adults aged 18 years or older with measurable disease",
    "adequate bone marrow liver and renal function at screening",
    "eastern cooperative oncology group performance score of zero to two",
    "no prior systemic therapy for advanced disease within four weeks",
    "women of childbearing potential must use reliable contraception",
    "life expectancy of at least twelve weeks per investigator",
    "known brain metastases that are untreated or symptomatic",
    "uncontrolled hypertension or active infection requiring antibiotics",
    "pregnancy or breast feeding during the treatment period",
    "major surgery within twenty eight days before enrolment",
)


def write_hint_table(path: Path, per_label: int = 4, seed: int = 0) -> Path:
    """A made-up trial table in the HINT/TOP CSV layout: two drugs with ``per_label``
    successful and failed trials each, one unbalanced drug, and leak columns filled in."""
    rng = random.Random(seed)
    rows = []
    n = 0
    plan = [("alphamab", per_label, per_label), ("betatinib", per_label, per_label)]
    plan.append(("gammastat", per_label, 1))
    for drug, n_success, n_failure in plan:
        for label, count in ((1, n_success), (0, n_failure)):
            for _ in range(count):
                n += 1
                inc = rng.sample(_CRITERIA[:6], 3)
                exc = rng.sample(_CRITERIA[6:], 2)
                criteria = (
                    "Inclusion Criteria:\n - "
                    + "\n - ".join(inc)
                    + "\nExclusion Criteria:\n - "
                    + "\n - ".join(exc)
                )
                if label == 0:
                    criteria += "\nThe study was terminated early due to poor accrual."
                rows.append(
                    {
                        "nctid": f"NCT{90000000 + n:08d}",
                        "status": "completed" if label else "terminated",
                        "why_stop": "" if label else "slow accrual",
                        "label": str(label),
                        "phase": "phase 2",
                        "diseases": str([rng.choice(["lung cancer", "breast cancer"])]),
                        "icdcodes": "[]",
                        "drugs": str([drug, "placebo"]),
                        "smiless": "[]",
                        "criteria": criteria,
                    }
                )
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
