"""The JSONL records of a batch run's items: from a finished graph state, or for an item that
raised or was stopped before it finished (kept, never dropped)."""

from __future__ import annotations

import time
from typing import Any, Literal

from clinsynth.agents.deps import Deps
from clinsynth.llm import LLMRequestError
from clinsynth.schemas import (
    Attempt,
    CriticReport,
    ItemRecord,
    LabelChange,
    Provenance,
    SourceChunk,
    Task,
    Usage,
)


def build_record(final: dict[str, Any], deps: Deps) -> ItemRecord:
    """Turn an item's final graph state into its JSONL record; PHI is masked in the history's
    raw model output and items, and in a rejected item (an accepted one passed the check)."""
    task = Task.model_validate(final["task"])
    attempts = [Attempt.model_validate(a) for a in final.get("attempts") or []]
    report = CriticReport.model_validate(final["report"]) if final.get("report") else None
    chunks = [SourceChunk.model_validate(c) for c in final.get("chunks") or []]
    status: Literal["accepted", "rejected"] = (
        "accepted" if final.get("status") == "accepted" else "rejected"
    )
    item = final.get("candidate")
    if item is None:
        item = next((a.item for a in reversed(attempts) if a.item is not None), None)
    provenance = Provenance(
        source_ids=[c.id for c in chunks],
        recipe=deps.recipe.name,
        model=deps.llm.describe().get("generator", "unknown"),
        prompt_version=deps.recipe.prompt_version,
        attempts=len(attempts),
        critic_scores=report.scores() if report else {},
        label_changes=[LabelChange.model_validate(c) for c in final.get("label_changes") or []],
        usage=Usage.model_validate(final.get("usage") or {}),
        duration_s=round(time.time() - final["started_at"], 4) if final.get("started_at") else None,
    )
    attempts = [deps.recipe.redacted_attempt(a) for a in attempts]
    if status == "rejected" and item is not None:
        item = deps.recipe.redacted(item)
    reasons = list(final.get("reasons") or [])
    if status == "rejected" and not reasons:
        reasons = ["rejected without a reason from the graph"]
    return ItemRecord(
        id=task.id,
        status=status,
        task=task,
        item=item,
        provenance=provenance,
        reasons=reasons,
        history=attempts,
        passages=chunks,
    )


def error_record(deps: Deps, task: Task, exc: BaseException, usage: Usage) -> ItemRecord:
    """A rejected record for an item whose graph raised (kept, never dropped), charged the
    ``usage`` of the calls it made before."""
    reason = str(exc) if isinstance(exc, LLMRequestError) else f"{type(exc).__name__}: {exc}"
    record = unfinished_record(deps, task, f"error: {reason}")
    record.provenance.usage = usage
    return record


def surplus_record(deps: Deps, task: Task, how: str) -> ItemRecord:
    """A surplus record for a candidate stopped (``how``) once the target was met."""
    return unfinished_record(
        deps, task, f"surplus: {how}, the target was reached first", status="surplus"
    )


def unfinished_record(
    deps: Deps, task: Task, reason: str, status: Literal["rejected", "surplus"] = "rejected"
) -> ItemRecord:
    """The record of an item that has no final graph state: no item, no attempts."""
    provenance = Provenance(
        recipe=deps.recipe.name,
        model=deps.llm.describe().get("generator", "unknown"),
        prompt_version=deps.recipe.prompt_version,
        attempts=0,
    )
    return ItemRecord(
        id=task.id,
        status=status,
        task=task,
        item=None,
        provenance=provenance,
        reasons=[reason],
    )
