"""Scripted replies of the ``trial-tasks`` recipe for the stub server, plus made-up
ClinicalTrials.gov studies that carry every field the tasks need.

Replies are decided from the request alone. Modes:

- ``accept``: a good question, three distinct distractors, a correct scenario N, and the
  termination type the keyword rules also find;
- ``flawed``: the first draft of each item has a flaw its checks catch (a distractor that
  duplicates the correct option, a scenario N 50 % off, the answer pasted into the question),
  the revision is good; completion drafts call every stop reason 'other' (relabelled);
- ``mixed``: ``accept`` or ``flawed`` chosen from a hash of the trial.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from pathlib import Path
from typing import Any

from clinsynth.evaluators.sample_size import PowerScenario, required_sample_size
from clinsynth.testing.stub_replies import requested_schema

_DISTRACTORS = {
    "eligibility criteria": (
        "Inclusion Criteria: children aged 2 to 11 years with moderate persistent asthma. "
        "Exclusion Criteria: cystic fibrosis; oral corticosteroids within 30 days.",
        "Inclusion Criteria: postmenopausal women with osteoporosis and a T-score below -2.5. "
        "Exclusion Criteria: bisphosphonate use in the past year; hypocalcaemia.",
        "Inclusion Criteria: adults with type 2 diabetes and HbA1c between 7 and 10 percent. "
        "Exclusion Criteria: insulin therapy; eGFR below 30.",
        "Inclusion Criteria: healthy volunteers aged 18 to 45 with normal ECG. "
        "Exclusion Criteria: smoking; any prescription medicine in the past 14 days.",
        "Inclusion Criteria: patients scheduled for elective knee replacement. "
        "Exclusion Criteria: rheumatoid arthritis; chronic opioid use.",
    ),
    "outcome measures (endpoints)": (
        "Change in forced expiratory volume in one second at week 12",
        "Time to first hip or vertebral fracture over three years",
        "Proportion of participants with HbA1c below 7 percent at week 26",
        "Maximum plasma concentration of the study drug after a single dose",
        "Pain on walking (visual analogue scale) on postoperative day 3",
    ),
    "arm design": (
        "Experimental: inhaled budesonide 200 mcg twice daily\nPlacebo Comparator: inhaler",
        "Active Comparator: alendronate 70 mg weekly\nExperimental: zoledronic acid yearly",
        "Experimental: metformin plus sitagliptin\nActive Comparator: metformin plus glipizide",
        "Experimental: single ascending oral doses\nPlacebo Comparator: matching capsules",
        "Experimental: femoral nerve block\nNo Intervention: standard analgesia only",
    ),
}
_STOP_WORDS = {
    "poor_enrollment": ("accru", "enrol", "recruit"),
    "safety": ("safety", "adverse", "toxic"),
    "efficacy": ("futil", "efficacy"),
    "business": ("fund", "sponsor", "business"),
}


def _user_text(request: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "user"
    )


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _tag(text: str, tag: str) -> str:
    match = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.S)
    return match.group(1) if match else ""


def _schema(request: dict[str, Any], text: str) -> str:
    named = requested_schema(request)
    if named:
        return named
    if "three distractors" in text:
        return "McqDraft"
    if "required_n" in text:
        return "ScenarioDraft"
    return "CompletionDraft" if "termination_type" in text else "QuestionDraft"


def _flawed(mode: str, trial: str) -> bool:
    if mode == "mixed":
        return _digest(trial) % 2 == 1
    return mode == "flawed"


def _scenario(trial: str, wrong: bool) -> dict[str, Any]:
    rng = random.Random(_digest(trial))
    if rng.random() < 0.5:
        fields: dict[str, Any] = {
            "outcome_type": "continuous",
            "mean_difference": rng.choice([3.0, 4.0, 5.0, 6.0]),
            "standard_deviation": rng.choice([8.0, 10.0, 12.0]),
        }
    else:
        control = rng.choice([0.3, 0.4, 0.5])
        fields = {
            "outcome_type": "binary",
            "control_rate": control,
            "treatment_rate": round(control - rng.choice([0.1, 0.15]), 2),
        }
    fields.update(
        alpha=0.05,
        power=rng.choice([0.8, 0.9]),
        allocation_ratio=rng.choice([1.0, 2.0]),
        dropout_rate=rng.choice([0.0, 0.1, 0.15]),
    )
    n = required_sample_size(PowerScenario.model_validate(fields))
    stated = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in fields.items())
    return {
        **fields,
        "question": f"A two-arm trial is planned with {stated}. How many participants in total?",
        "required_n": math.ceil(n * 1.5) if wrong else n,
    }


def _termination(reason: str, flawed: bool) -> str:
    if not reason:
        return "none"
    if flawed:
        return "other"
    low = reason.lower()
    hits = [kind for kind, words in _STOP_WORDS.items() if any(w in low for w in words)]
    return hits[0] if len(hits) == 1 else "other"


def trial_tasks_reply(request: dict[str, Any], mode: str = "accept") -> str:
    """The JSON content the scripted model returns for one request."""
    text = _user_text(request)
    trial = _tag(text, "trial")
    revised = "<feedback>" in text
    flawed = _flawed(mode, trial) and not revised
    schema = _schema(request, text)
    if schema == "ScenarioDraft":
        return json.dumps(_scenario(trial, flawed))
    if schema == "CompletionDraft":
        reason = _tag(text, "stop_reason")
        question = "From the design above, will this trial complete or terminate early?"
        return json.dumps(
            {"question": question, "termination_type": _termination(reason, _flawed(mode, trial))}
        )
    what_match = re.search(r"The correct (.+?) of this trial:", text) or re.search(
        r"The answer is this trial's (.+?)\.", text
    )
    what = what_match.group(1) if what_match else "design"
    question = f"Which of the following is the {what} of the trial described above?"
    if schema != "McqDraft":
        return json.dumps({"question": question})
    answer = _tag(text, "answer")
    pool = list(_DISTRACTORS.get(what, _DISTRACTORS["eligibility criteria"]))
    random.Random(_digest(trial)).shuffle(pool)
    shared = [w for w in dict.fromkeys(re.findall(r"[\w-]{4,}", answer)) if w in trial][:4]
    distractors = [f"{d} ({' '.join(shared)})" if shared else d for d in pool[:3]]
    if flawed:
        distractors[0] = answer  # a duplicate of the correct option
    return json.dumps({"question": question, "distractors": distractors})


def make_responder(mode: str = "accept") -> Any:
    """A stub-server responder for ``mode``."""

    def responder(request: dict[str, Any]) -> str:
        return trial_tasks_reply(request, mode)

    return responder


# --- made-up studies ---------------------------------------------------------------------

_CRITERIA = (
    "adults aged 18 years or older with histologically confirmed disease",
    "adequate bone marrow, liver and renal function",
    "ECOG performance status 0 or 1",
    "no prior systemic therapy for advanced disease",
    "measurable disease by RECIST 1.1",
    "able to swallow tablets",
    "known brain metastases",
    "uncontrolled hypertension",
    "pregnancy or breast feeding",
    "major surgery within 28 days",
    "active hepatitis B or C infection",
    "QTc above 470 ms",
)
_ENDPOINTS = (
    "Overall response rate at week 24",
    "Progression-free survival at 12 months",
    "Number of participants with grade 3 or higher adverse events",
    "Change from baseline in quality of life score at week 12",
    "Overall survival at 2 years",
    "Duration of response",
    "Pharmacokinetic trough concentration at cycle 2",
)
_CONDITIONS = ("lung cancer", "breast cancer", "colorectal cancer", "melanoma")
_WORDS = (
    "lantern",
    "quartz",
    "meadow",
    "violet",
    "harbor",
    "saffron",
    "glacier",
    "cobalt",
    "juniper",
    "falcon",
    "orchid",
    "summit",
)
_STOPS = ("slow accrual", "sponsor decision to stop funding", "futility at interim analysis",
          "unexpected toxicity", "")  # fmt: skip


def study(n: int, rng: random.Random) -> dict[str, Any]:
    """One made-up CT.gov v2 study (``n`` makes its id and names unique)."""
    drug = f"testumab-{n}"
    tag = " ".join(rng.sample(_WORDS, 3))
    inc = rng.sample(_CRITERIA[:6], 3)
    exc = rng.sample(_CRITERIA[6:], 2)
    status = "COMPLETED" if rng.random() < 0.6 else "TERMINATED"
    arms = [
        {"label": f"{drug} {rng.choice([5, 10, 20, 40])} mg", "type": "EXPERIMENTAL",
         "description": f"{drug} by mouth every {rng.choice(['day', 'week', 'other day'])}"},
        {"label": rng.choice(["Placebo", "Standard care", "Docetaxel"]),
         "type": rng.choice(["PLACEBO_COMPARATOR", "ACTIVE_COMPARATOR"]),
         "description": f"comparator given for {rng.choice([6, 12, 24])} weeks"},
    ]  # fmt: skip
    return {
        "protocolSection": {
            "identificationModule": {"nctId": f"NCT{80000000 + n:08d}",
                                     "briefTitle": f"The {tag} study of {drug}"},
            "descriptionModule": {"briefSummary": f"The {tag} trial tests {drug}."},
            "conditionsModule": {"conditions": [rng.choice(_CONDITIONS)]},
            "designModule": {
                "phases": [rng.choice(["PHASE2", "PHASE3"])],
                "designInfo": {"allocation": "RANDOMIZED", "interventionModel": "PARALLEL",
                               "primaryPurpose": "TREATMENT",
                               "maskingInfo": {"masking": rng.choice(["NONE", "DOUBLE"])}},
                "enrollmentInfo": {"count": rng.choice([40, 60, 120, 240, 480]) + n},
            },
            "armsInterventionsModule": {
                "armGroups": arms,
                "interventions": [{"name": drug}, {"name": arms[1]["label"]}],
            },
            "outcomesModule": {
                "primaryOutcomes": [{"measure": m} for m in rng.sample(_ENDPOINTS, 2)],
            },
            "eligibilityModule": {
                "eligibilityCriteria": "Inclusion Criteria:\n- " + "\n- ".join(inc)
                + "\nExclusion Criteria:\n- " + "\n- ".join(exc),
                "sex": "ALL", "minimumAge": "18 Years", "healthyVolunteers": False,
            },
            "statusModule": {
                "overallStatus": status,
                **({"whyStopped": rng.choice(_STOPS)} if status == "TERMINATED" else {}),
            },
        }
    }  # fmt: skip


def write_ctgov_studies(path: Path, n: int = 24, seed: int = 0, start: int = 0) -> Path:
    """``n`` made-up studies as a CT.gov v2 ``{"studies": [...]}`` JSON file."""
    rng = random.Random(seed)
    studies = [study(start + i + 1, rng) for i in range(n)]
    path.write_text(json.dumps({"studies": studies}, indent=1))
    return path
