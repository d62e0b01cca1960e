"""Pure routing functions of the generation graph (no I/O; unit-tested directly)."""

from __future__ import annotations

from typing import Literal

from clinsynth.schemas import ItemState

AfterCritic = Literal["label_corrector", "generator", "reject"]
AfterLabel = Literal["accept", "reject"]


def route_after_critic(state: ItemState) -> AfterCritic:
    """accept/relabel → label corrector; revise → generator while attempts remain; else reject."""
    report = state.get("report") or {}
    verdict = report.get("verdict", "reject")
    if verdict in ("accept", "relabel"):
        return "label_corrector"
    if verdict == "revise" and len(state.get("attempts") or []) < state.get("max_attempts", 1):
        return "generator"
    return "reject"


def route_after_label_corrector(state: ItemState) -> AfterLabel:
    """The label corrector may reject an item whose label cannot be fixed."""
    return "reject" if state.get("status") == "rejected" else "accept"
