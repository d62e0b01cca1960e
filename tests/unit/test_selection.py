"""Item selection for inspect and the report: conditions, sorting, sampling; score gates."""

from __future__ import annotations

import pytest

from clinsynth.evaluators.scores import gates, score_table
from clinsynth.evaluators.selection import SelectionError, parse_condition, select
from clinsynth.schemas import ItemRecord, Provenance, Task, Usage


def rec(
    i: int, difficulty: float | None, label: str = "answerable", tokens: int = 100
) -> ItemRecord:
    scores = {"lexical_overlap": i / 10}
    if difficulty is not None:
        scores["difficulty"] = difficulty
    return ItemRecord(
        id=f"qa-0-{i:06d}",
        status="accepted",
        task=Task(id=f"qa-0-{i:06d}", index=i, recipe="qa", label=label),
        item={"question": f"q{i}?", "answerable": label == "answerable"},
        provenance=Provenance(
            recipe="qa",
            model="m",
            prompt_version="v",
            attempts=1 + i % 2,
            critic_scores=scores,
            usage=Usage(input_tokens=tokens, output_tokens=i),
        ),
    )


RECORDS = [rec(0, 0.2), rec(1, 0.9), rec(2, 0.7), rec(3, None, "unanswerable"), rec(4, 0.75)]


def ids(records: list[ItemRecord]) -> list[int]:
    return [int(r.id[-6:]) for r in records]


def test_where_filters_on_scores_fields_and_provenance() -> None:
    assert ids(select(RECORDS, 10, where=["difficulty>=0.7"])) == [1, 2, 4]
    assert ids(select(RECORDS, 10, where=["difficulty>=0.7", "attempts==2"])) == [1]
    assert ids(select(RECORDS, 10, where=["answerable==false"])) == [3]
    assert ids(select(RECORDS, 10, where=["label=unanswerable"])) == [3]
    assert ids(select(RECORDS, 10, where=["tokens>102"])) == [3, 4]


def test_sort_orders_by_a_score_and_puts_missing_last() -> None:
    assert ids(select(RECORDS, 3, sort="difficulty")) == [1, 4, 2]
    assert ids(select(RECORDS, 5, sort="difficulty:asc")) == [0, 2, 4, 1, 3]


def test_sample_is_seeded_and_in_id_order() -> None:
    first = select(RECORDS, 2, seed=1)
    assert first == select(RECORDS, 2, seed=1) and len(first) == 2
    assert ids(first) == sorted(ids(first))
    assert {tuple(ids(select(RECORDS, 2, seed=s))) for s in range(20)} != {tuple(ids(first))}


@pytest.mark.parametrize(
    ("where", "sort", "message"),
    [
        (["difficulty>>0.7"], None, "write NAME OP VALUE"),
        (["nonsense>1"], None, "unknown name 'nonsense'"),
        ([], "nonsense", "unknown --sort 'nonsense'"),
        ([], "difficulty:up", "NAME:asc"),
    ],
)
def test_bad_conditions_say_what_works(where: list[str], sort: str | None, message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        select(RECORDS, 3, where=where, sort=sort)


def test_parse_condition_reads_numbers_booleans_and_words() -> None:
    assert parse_condition("difficulty >= 0.7").value == 0.7
    assert parse_condition("answerable==True").value is True
    assert parse_condition("label=='success'").value == "success"


def check(
    name: str, score: float, threshold: float, on_fail: str = "revise", reason: str = ""
) -> dict:
    return {
        "name": name,
        "score": score,
        "threshold": threshold,
        "on_fail": on_fail,
        "reason": reason,
    }


def test_gates_and_directions_come_from_the_stored_reports() -> None:
    rows = [
        {
            "provenance": {"critic_scores": {"lexical_overlap": 0.2, "difficulty": 0.8, "x": 1}},
            "history": [
                {
                    "report": {
                        "checks": [
                            check("lexical_overlap", 0.2, 0.5),
                            check("difficulty", 0.8, 0.9),
                            check("difficulty", 0.1, 0.4),
                            check("answer_validity", 0.0, 1.0, "relabel"),
                        ]
                    }
                }
            ],
        }
    ]
    got = gates(rows)
    assert got["lexical_overlap"] == "fails above 0.5 → revise"
    assert got["difficulty"] == "fails outside 0.4–0.9 → revise"
    assert got["answer_validity"] == "fails below 1 → relabel"
    table = {s.name: s for s in score_table(rows)}
    assert table["lexical_overlap"].good == "lower is better"
    assert table["difficulty"].good == "inside the band"
    assert table["x"].good == "not stated for this check" and table["x"].gate == "not recorded"
    ungated = [
        {
            "history": [
                {
                    "report": {
                        "checks": [
                            check(
                                "lexical_overlap",
                                0.9,
                                0.5,
                                reason="measured, not gated (variant direct): x",
                            )
                        ]
                    }
                }
            ]
        }
    ]
    assert gates(ungated)["lexical_overlap"] == "measured, not gated"
