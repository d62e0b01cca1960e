"""Tabular input: empty and non-UTF-8 files, and blank/NaN/None labels as missing labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinsynth.cli_support import UserError
from clinsynth.commands.correct_labels import read_labelled_csv
from clinsynth.datasets.tables import TableError, is_missing, read_csv
from clinsynth.datasets.trials import TrialError, load_examples


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def test_missing_labels() -> None:
    missing = [None, float("nan"), "", "  ", "NaN", "nan", "None", "NULL", " none "]
    assert [is_missing(v) for v in missing] == [True] * 9
    assert [is_missing(v) for v in ["0", 0, "no", "Nancy", 1.5, False]] == [False] * 6


def test_empty_and_header_only_csv_say_empty(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(TableError) as err:
        read_csv(empty)
    assert str(err.value) == f"{empty} is empty (no header row, no data)"
    header = _csv(tmp_path / "h.csv", ["text,label"])
    with pytest.raises(TableError) as err:
        read_csv(header)
    assert str(err.value) == f"{header} is empty: a header (text, label) but no rows"


def test_non_utf8_csv_says_save_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(TableError) as err:
        read_csv(path)
    assert str(err.value) == (
        f"{path} is not UTF-8 text (invalid continuation byte); save it as UTF-8 "
        "(e.g. 'CSV UTF-8' in Excel)"
    )


@pytest.mark.parametrize("cell", ["NaN", "None", "", "null"])
def test_labelled_csv_missing_label_names_the_line(tmp_path: Path, cell: str) -> None:
    rows = ["text,label", "a,x", '"two\nlines",y', "c,x", f"d,{cell}", "e,y"]
    path = _csv(tmp_path / "d.csv", rows)
    with pytest.raises(UserError) as err:
        read_labelled_csv(path, "text", "label")
    shown = "blank" if not cell else repr(cell)
    assert str(err.value) == (
        f"{path}:6: missing label ('label' is {shown}); fill it in or remove the row"
    )
    _csv(path, [*rows[:4], "d,x", "e,y"])
    assert [r["label"] for r in read_labelled_csv(path, "text", "label")] == list("xyxxy")


def test_load_examples_missing_label_is_an_error_not_a_class(tmp_path: Path) -> None:
    path = _csv(tmp_path / "g.csv", ["text,label", "a,yes", "b,NaN"])
    with pytest.raises(TrialError) as err:
        load_examples(path)
    assert str(err.value).startswith(f"{path}:3: missing label ('label' is 'NaN')")
    jsonl = tmp_path / "g.jsonl"
    jsonl.write_text('{"text": "a", "label": "yes"}\n{"text": "b", "label": NaN}\n')
    with pytest.raises(TrialError, match=r"row g\.jsonl:2: missing label \('label' is 'nan'\)"):
        load_examples(jsonl)
    jsonl.write_text('{"text": "a", "label": "yes"}\n{"text": "b", "label": null}\n')
    with pytest.raises(TrialError, match=r"row g\.jsonl:2: missing label \('label' is blank\)"):
        load_examples(jsonl)
    jsonl.write_text(json.dumps({"text": "a", "label": "yes"}) + "\n{broken\n")
    with pytest.raises(TrialError) as err:
        load_examples(jsonl)
    assert str(err.value).startswith(f"{jsonl}:2: invalid JSON")
    assert [e.label for e in load_examples(_csv(path, ["text,label", "a,yes", "b,no"]))] == [
        "yes",
        "no",
    ]


def test_empty_trial_csv_says_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"")
    with pytest.raises(TrialError) as err:
        load_examples(path)
    assert str(err.value) == f"{path} is empty (no header row, no data)"


def test_tool_pairs_missing_label_names_the_row(tmp_path: Path) -> None:
    from clinsynth.tools.models import ToolError
    from clinsynth.tools.training import _pairs

    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n')
    with pytest.raises(ToolError) as err:
        _pairs(path, "text", "label")
    assert str(err.value) == (
        f"{path} row 1: missing label ('label' is blank); fill it in or remove the row"
    )
