"""Trial records: the schema, outcome labels, the leak scrubber shared by real and synthetic
records, and the text a model reads of a trial."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from clinsynth.datasets.trials.facts import TrialFacts

TrialLabel = Literal["success", "failure"]
LABELS: tuple[TrialLabel, TrialLabel] = ("success", "failure")
Split = Literal["train", "eval"]

LEAK_FIELDS = frozenset(
    {
        "status",
        "why_stop",
        "why_stopped",
        "whystopped",
        "overall_status",
        "overallstatus",
        "last_known_status",
        "lastknownstatus",
        "statusmodule",
        "resultssection",
        "hasresults",
        "completion_date",
        "primary_completion_date",
        "outcome",
        "label",
    }
)
"""Raw fields that are recorded after a trial ends (or are the target): never trial text."""


class TrialError(Exception):
    """A trial file that cannot be read as trials."""


class TrialContent(BaseModel):
    """What a trial says about itself (the generator's structured output)."""

    title: str = Field(description="the trial's title")
    phase: str = Field(description="trial phase, e.g. 'phase 2'")
    conditions: list[str] = Field(description="conditions or diseases studied")
    interventions: list[str] = Field(description="intervention names, e.g. drug names")
    eligibility_criteria: str = Field(
        description="'Inclusion Criteria:' and 'Exclusion Criteria:' blocks"
    )
    outcome_measures: list[str] = Field(description="primary and secondary outcome measures")
    summary: str = Field(description="a brief summary of the trial's aim and design")


class LabelCheck(BaseModel):
    """The label corrector's verdict on a synthetic trial."""

    model: str
    target: TrialLabel
    probability: float = Field(description="the classifier's probability of the target label")
    decision: Literal["kept", "relabelled", "rejected"]


class TrialRecord(TrialContent):
    """One trial with its outcome label and where it came from."""

    title: str = ""
    phase: str = ""
    conditions: list[str] = Field(default_factory=list)
    interventions: list[str] = Field(default_factory=list)
    eligibility_criteria: str = ""
    outcome_measures: list[str] = Field(default_factory=list)
    summary: str = ""
    id: str
    label: TrialLabel | None = None
    source: str = Field(description="hint_top, trialbench, ctgov or synthetic")
    label_check: LabelCheck | None = None
    facts: TrialFacts | None = Field(
        None,
        exclude=True,
        description="design, enrollment and status (targets of trial-tasks); never in the "
        "record's JSON dump or its text",
    )


def label_of(value: Any) -> TrialLabel | None:
    """Map 1/0, "1"/"0", success/failure to a trial label; None when unknown."""
    text = str(value).strip().lower()
    if text in ("1", "1.0", "success", "true"):
        return "success"
    if text in ("0", "0.0", "failure", "false"):
        return "failure"
    return None


def normalize_name(name: str) -> str:
    """Lower-case, whitespace-collapsed intervention or condition name."""
    return " ".join(str(name).lower().split())


# --- the shared leak scrubber ------------------------------------------------------------

_LEAK_PATTERNS = [
    r"\b(overall|recruitment|trial|study|last known)[ _]status\b",
    r"\bwhy[ _]?stop(ped)?\b",
    r"\b(study|trial) (was|is|has been|had been|were) (prematurely |early )?"
    r"(terminated|withdrawn|suspended|stopped|halted|closed|discontinued|completed)",
    r"\b(terminated|halted|stopped|closed) (early|prematurely)\b",
    r"\b(early|premature) (termination|closure|stopping)\b",
    r"\btermination of the (study|trial)\b",
    r"\b(poor|slow|low|insufficient|inadequate) (accrual|enrol?lment|recruitment)\b",
    r"\black of (efficacy|funding|accrual)\b",
    r"\bfutility\b",
    r"\b(met|achieved|failed to meet|did not meet|missed) (its|the) primary (end ?point|outcome)",
    r"\b(sponsor|business|strategic) decision\b",
    r"\btrial (success|failure)\b",
    r"\boutcome label\b",
]
_LEAK_RE = re.compile("|".join(f"(?:{p})" for p in _LEAK_PATTERNS), re.IGNORECASE)
_SENTENCE_RE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")
_STATUS_WORDS = re.compile(
    r"^\s*(terminated|withdrawn|suspended|completed|unknown status|active, not recruiting)\s*$",
    re.IGNORECASE,
)


def reveals_outcome(text: str) -> bool:
    """Whether ``text`` tells how a trial ended (what :func:`scrub_text` would remove)."""
    return bool(text) and (bool(_LEAK_RE.search(text)) or bool(_STATUS_WORDS.match(text)))


def scrub_text(text: str) -> str:
    """Remove every sentence or line of ``text`` that reveals a trial's outcome or status."""
    if not text or not _LEAK_RE.search(text):
        return "" if _STATUS_WORDS.match(text or "") else text
    kept = [s for s in _SENTENCE_RE.findall(text) if not _LEAK_RE.search(s)]
    return re.sub(r"[ \t]{2,}", " ", "".join(kept)).strip()


def scrub_leaks(record: TrialRecord) -> TrialRecord:
    """THE leak scrubber, for real and synthetic records alike: drop outcome-revealing
    sentences and bare status words from every text field (outcome fields such as
    ``status`` / ``why_stop`` never reach a record: loaders skip :data:`LEAK_FIELDS`)."""

    def clean_list(values: list[str]) -> list[str]:
        return [v for v in (scrub_text(x) for x in values) if v]

    return record.model_copy(
        update={
            "title": scrub_text(record.title),
            "summary": scrub_text(record.summary),
            "eligibility_criteria": scrub_text(record.eligibility_criteria),
            "conditions": clean_list(record.conditions),
            "interventions": clean_list(record.interventions),
            "outcome_measures": clean_list(record.outcome_measures),
        }
    )


def drop_leak_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A raw row without the fields in :data:`LEAK_FIELDS` (compared case-insensitively)."""
    return {k: v for k, v in raw.items() if k.lower().replace("/", "_") not in LEAK_FIELDS}


TEXT_FIELDS = (
    "title",
    "phase",
    "conditions",
    "interventions",
    "summary",
    "outcome_measures",
    "eligibility_criteria",
)


def trial_text(record: TrialRecord | Mapping[str, Any], fields: Iterable[str] | None = None) -> str:
    """The text of a trial that models see (retrieval, classification, similarity);
    ``fields`` (default: all of :data:`TEXT_FIELDS`) picks which parts to include."""
    rec = record if isinstance(record, TrialRecord) else TrialRecord.model_validate(record)
    wanted = set(TEXT_FIELDS if fields is None else fields)
    unknown = wanted - set(TEXT_FIELDS)
    if unknown:
        raise TrialError(f"unknown trial fields {sorted(unknown)} (known: {list(TEXT_FIELDS)})")
    parts = [
        ("title", "Title", rec.title),
        ("phase", "Phase", rec.phase),
        ("conditions", "Conditions", "; ".join(rec.conditions)),
        ("interventions", "Interventions", "; ".join(rec.interventions)),
        ("summary", "Summary", rec.summary),
        ("outcome_measures", "Outcome measures", "; ".join(rec.outcome_measures)),
        ("eligibility_criteria", "Eligibility criteria", _squash(rec.eligibility_criteria)),
    ]
    return "\n".join(
        f"{name}: {value}" for key, name, value in parts if key in wanted and value.strip()
    )


def _squash(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


# --- loaders -----------------------------------------------------------------------------
