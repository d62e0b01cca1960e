"""Structured facts of a trial beside its text: design, arms, enrollment and how it ended.

These are the *targets and inputs* of the ``trial-tasks`` recipe (TrialPanorama-style tasks):
the design fields and arm groups feed design questions, ``enrollment`` is the sample-size
answer, and ``status`` / ``why_stop`` are the completion label and its free-text reason.
They never enter a trial's text (:func:`~clinsynth.datasets.trials.schema.trial_text`): a
record carries them in ``TrialRecord.facts``, which is left out of the record's JSON dump, and
the store keeps them in their own metadata field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

Completion = Literal["completed", "terminated"]

_COMPLETED = {"completed"}
_TERMINATED = {"terminated", "withdrawn", "suspended"}


class ArmGroup(BaseModel):
    """One arm of a trial as registered (CT.gov ``armGroups``)."""

    group_type: str = ""
    title: str = ""
    description: str = ""


class TrialFacts(BaseModel):
    """What a trial registry records about a trial besides its descriptive text."""

    enrollment: int | None = Field(default=None, description="participants enrolled")
    allocation: str = ""
    intervention_model: str = ""
    masking: str = ""
    primary_purpose: str = ""
    number_of_arms: int | None = None
    arm_counts: dict[str, int] = Field(
        default_factory=dict, description="arm type → number of arms (TrialBench columns)"
    )
    arms: list[ArmGroup] = Field(default_factory=list)
    intervention_descriptions: list[str] = Field(default_factory=list)
    gender: str = ""
    minimum_age: str = ""
    maximum_age: str = ""
    healthy_volunteers: str = ""
    status: str = Field(default="", description="registry status, e.g. completed (a label)")
    why_stop: str = Field(default="", description="free-text reason for stopping (a label source)")

    def completion(self) -> Completion | None:
        """The completion label read from the status field (never from any text)."""
        status = " ".join(self.status.lower().replace("_", " ").split())
        if status in _COMPLETED:
            return "completed"
        if status in _TERMINATED:
            return "terminated"
        return None

    def design_text(self) -> str:
        """The trial's arm design as one option text: arm groups when registered, else the
        design fields, arm counts and intervention descriptions."""
        if self.arms:
            return "\n".join(
                f"{a.group_type or 'Arm'}: {a.title}"
                + (f" — {a.description}" if a.description else "")
                for a in self.arms
            )
        parts = [
            f"{name}: {value}"
            for name, value in (
                ("Allocation", self.allocation),
                ("Intervention model", self.intervention_model),
                ("Masking", self.masking),
            )
            if value
        ]
        if self.arm_counts:
            arms = ", ".join(f"{n} {kind}" for kind, n in sorted(self.arm_counts.items()))
            parts.append(f"Arms: {arms}")
        parts.extend(f"Intervention: {d}" for d in self.intervention_descriptions if d)
        return "\n".join(parts) if len(parts) >= 2 else ""

    def design_inputs(self) -> dict[str, str]:
        """The design characteristics a completion or sample-size question shows."""
        return {
            key: value
            for key, value in (
                ("allocation", self.allocation),
                ("intervention_model", self.intervention_model),
                ("masking", self.masking),
                ("primary_purpose", self.primary_purpose),
                ("number_of_arms", str(self.number_of_arms or "")),
                ("gender", self.gender),
                ("minimum_age", self.minimum_age),
                ("maximum_age", self.maximum_age),
                ("healthy_volunteers", self.healthy_volunteers),
            )
            if value
        }


def _text(value: Any) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return "" if text.lower() in ("nan", "none") else text


def _int(value: Any) -> int | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number == number and number >= 0 else None  # NaN != NaN


def hint_facts(row: Mapping[str, str]) -> TrialFacts:
    """Facts of a HINT/TOP row: its recruitment status and why it stopped."""
    return TrialFacts(status=_text(row.get("status")), why_stop=_text(row.get("why_stop")))


_MASKING = {0: "None (Open Label)", 1: "Single", 2: "Double", 3: "Triple", 4: "Quadruple"}


def trialbench_facts(row: Mapping[str, str]) -> TrialFacts:
    """Facts of a TrialBench row: enrollment, design fields, arm counts, eligibility fields."""
    counts = {
        key.removesuffix(" Arm Number"): n
        for key, value in row.items()
        if key.endswith(" Arm Number") and (n := _int(value) or 0) > 0
    }
    masking = _int(row.get("study_design_info/masking_num"))
    return TrialFacts(
        enrollment=_int(row.get("enrollment")),
        allocation=_text(row.get("study_design_info/allocation")),
        intervention_model=_text(row.get("study_design_info/intervention_model")),
        masking=_MASKING.get(masking, "") if masking is not None else "",
        primary_purpose=_text(row.get("study_design_info/primary_purpose")),
        number_of_arms=_int(row.get("number_of_arms")) or (sum(counts.values()) or None),
        arm_counts=counts,
        intervention_descriptions=[d] if (d := _text(row.get("intervention/description"))) else [],
        gender=_text(row.get("eligibility/gender")),
        minimum_age=_text(row.get("eligibility/minimum_age")),
        maximum_age=_text(row.get("eligibility/maximum_age")),
        healthy_volunteers=_text(row.get("eligibility/healthy_volunteers")),
    )


def ctgov_facts(proto: Mapping[str, Any]) -> TrialFacts:
    """Facts of a ClinicalTrials.gov v2 ``protocolSection``."""
    design = proto.get("designModule") or {}
    info = design.get("designInfo") or {}
    arms = (proto.get("armsInterventionsModule") or {}).get("armGroups") or []
    elig = proto.get("eligibilityModule") or {}
    status = proto.get("statusModule") or {}
    healthy = elig.get("healthyVolunteers")
    return TrialFacts(
        enrollment=_int((design.get("enrollmentInfo") or {}).get("count")),
        allocation=_text(info.get("allocation")),
        intervention_model=_text(info.get("interventionModel")),
        masking=_text((info.get("maskingInfo") or {}).get("masking")),
        primary_purpose=_text(info.get("primaryPurpose")),
        number_of_arms=len(arms) or None,
        arms=[
            ArmGroup(
                group_type=_text(a.get("type")),
                title=_text(a.get("label")),
                description=_text(a.get("description")),
            )
            for a in arms
        ],
        gender=_text(elig.get("sex")),
        minimum_age=_text(elig.get("minimumAge")),
        maximum_age=_text(elig.get("maximumAge")),
        healthy_volunteers="" if healthy is None else ("Yes" if healthy else "No"),
        status=_text(status.get("overallStatus")),
        why_stop=_text(status.get("whyStopped")),
    )
