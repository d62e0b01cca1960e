"""Pure parts of the chat agent: escalation, topic narrowing, the versioned system prompt."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clinsynth.apps.chat_session import (
    CHAT_PROMPT_VERSION,
    MAX_TARGET_MIN,
    escalate,
    narrow,
    system_prompt,
)
from clinsynth.apps.chat_tools import GenerateRequest
from clinsynth.config import parse_band


def test_escalate_sets_the_minimum_above_the_last_measurement() -> None:
    target = escalate(0.69, "hard")
    low, high = parse_band(target)  # type: ignore[misc]
    assert low > 0.69 and high == 1.0
    # Relative to the measurement, not to the previous target's band.
    assert parse_band(escalate(0.9, "hard"))[0] > 0.9  # type: ignore[index]


def test_escalate_without_measurement_steps_above_the_target_band() -> None:
    assert parse_band(escalate(None, "medium"))[0] > parse_band("medium")[0]  # type: ignore[index]
    assert parse_band(escalate(None, None))[0] > parse_band("hard")[0]  # type: ignore[index]


def test_escalate_is_capped() -> None:
    assert parse_band(escalate(0.99, None))[0] == MAX_TARGET_MIN  # type: ignore[index]


def test_narrow_topic() -> None:
    assert narrow("anticoagulation in atrial fibrillation", "dosing") == (
        "anticoagulation in atrial fibrillation: dosing"
    )
    assert narrow(None, "dosing") == "dosing"
    assert narrow("asthma", None) == "asthma"


def test_system_prompt_renders_the_session() -> None:
    empty = system_prompt({"messages": []})
    assert "generate_items" in empty and "none yet" in empty
    text = system_prompt(
        {
            "messages": [],
            "topic": "heart failure",
            "difficulty_target": "0.80-1.0",
            "last_difficulty": 0.7345,
            "runs": ["a", "b"],
        }
    )
    assert "topic: heart failure" in text and "0.80-1.0" in text
    assert "measured difficulty of the last batch: 0.73" in text and "batches generated: 2" in text
    assert CHAT_PROMPT_VERSION == "chat-v2"


def test_generate_request_rejects_unknown_difficulty() -> None:
    with pytest.raises(ValidationError):
        GenerateRequest(difficulty="impossible")
    assert GenerateRequest(difficulty="0.7-0.9").difficulty == "0.7-0.9"
