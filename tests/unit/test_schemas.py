"""Schemas: verdict aggregation, usage arithmetic, JSONL round trip."""

from __future__ import annotations

from clinsynth.schemas import (
    Attempt,
    CheckResult,
    CriticReport,
    ItemRecord,
    LabelChange,
    Provenance,
    Task,
    Usage,
)


def check(name: str, passed: bool, on_fail: str = "revise") -> CheckResult:
    return CheckResult(
        name=name,
        score=1.0 if passed else 0.0,
        passed=passed,
        reason=f"{name} reason",
        on_fail=on_fail,
    )  # type: ignore[arg-type]


def test_all_passing_checks_accept() -> None:
    report = CriticReport.from_checks([check("a", True), check("b", True)])
    assert report.verdict == "accept"
    assert report.reasons == []
    assert report.scores() == {"a": 1.0, "b": 1.0}


def test_most_severe_failure_decides() -> None:
    relabel_only = CriticReport.from_checks([check("a", False, "relabel"), check("b", True)])
    assert relabel_only.verdict == "relabel"
    mixed = CriticReport.from_checks([check("a", False, "relabel"), check("b", False, "revise")])
    assert mixed.verdict == "revise"
    assert mixed.reasons == ["a: a reason", "b: b reason"]
    worst = CriticReport.from_checks([check("a", False, "revise"), check("b", False, "reject")])
    assert worst.verdict == "reject"


def test_usage_adds_up() -> None:
    total = Usage(input_tokens=3, output_tokens=4, calls=1) + Usage(input_tokens=1, calls=1)
    assert (total.input_tokens, total.output_tokens, total.calls, total.total_tokens) == (
        4,
        4,
        2,
        8,
    )


def test_item_record_round_trips_through_json() -> None:
    task = Task(id="qa-0-000001", index=1, recipe="qa", topic="heart failure")
    record = ItemRecord(
        id=task.id,
        status="accepted",
        task=task,
        item={"question": "Why?", "answer": "because"},
        provenance=Provenance(
            source_ids=["doc#0"],
            recipe="qa",
            model="m",
            prompt_version="qa-v1",
            attempts=2,
            label_changes=[
                LabelChange(
                    field="answer",
                    old="x",
                    new="unanswerable",
                    method="answer-not-located",
                    reason="r",
                )
            ],
        ),
        history=[Attempt(number=1, error="bad json", raw_output="{"), Attempt(number=2)],
    )
    again = ItemRecord.model_validate_json(record.model_dump_json())
    assert again == record
    assert again.provenance.label_changes[0].new == "unanswerable"


def test_a_runaway_raw_reply_is_cut_on_the_attempt() -> None:
    from clinsynth.schemas import RAW_OUTPUT_CHARS, Attempt

    kept = Attempt(number=1, raw_output="x" * RAW_OUTPUT_CHARS)
    assert kept.raw_output == "x" * RAW_OUTPUT_CHARS
    cut = Attempt(number=1, raw_output="y" * (RAW_OUTPUT_CHARS + 500))
    assert cut.raw_output is not None
    assert cut.raw_output.startswith("y" * RAW_OUTPUT_CHARS)
    assert cut.raw_output.endswith("… [500 characters cut]")
    assert len(cut.raw_output) < RAW_OUTPUT_CHARS + 40
