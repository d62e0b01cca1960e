"""The pure routing functions of the generation graph."""

from __future__ import annotations

import pytest

from clinsynth.graphs.routing import route_after_critic, route_after_label_corrector


def state(verdict: str | None, attempts: int, max_attempts: int = 3) -> dict:
    report = None if verdict is None else {"verdict": verdict, "reasons": [], "checks": []}
    return {"report": report, "attempts": [{}] * attempts, "max_attempts": max_attempts}


@pytest.mark.parametrize(
    ("verdict", "attempts", "expected"),
    [
        ("accept", 1, "label_corrector"),
        ("accept", 3, "label_corrector"),
        ("relabel", 2, "label_corrector"),
        ("revise", 1, "generator"),
        ("revise", 2, "generator"),
        ("revise", 3, "reject"),
        ("revise", 4, "reject"),
        ("reject", 1, "reject"),
        (None, 1, "reject"),
    ],
)
def test_route_after_critic(verdict: str | None, attempts: int, expected: str) -> None:
    assert route_after_critic(state(verdict, attempts)) == expected


def test_single_attempt_never_revises() -> None:
    assert route_after_critic(state("revise", 1, max_attempts=1)) == "reject"


def test_route_after_label_corrector() -> None:
    assert route_after_label_corrector({"status": None}) == "accept"
    assert route_after_label_corrector({}) == "accept"
    assert route_after_label_corrector({"status": "rejected"}) == "reject"
