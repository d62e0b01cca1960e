"""``fail`` and ``guard``: one ``error:`` line on stderr, message verbatim, right exit code."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import NoReturn

import pytest
import typer

from clinsynth.cli_support import fail, guard


def _raise(exc: BaseException) -> NoReturn:
    raise exc


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_fail_prints_markup_in_a_message_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exit_:
        fail("no run at runs/[/bold]x[red]  y\nsecond line", 2)
    assert exit_.value.exit_code == 2
    assert _error_line(capsys) == "error: no run at runs/[/bold]x[red]  y second line"


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (
            PermissionError(13, "Permission denied", "/data/[b]notes.csv"),
            "error: /data/[b]notes.csv: Permission denied (check the path and its permissions)",
        ),
        (
            UnicodeDecodeError("utf-8", b"caf\xe9", 3, 4, "invalid continuation byte"),
            "error: a file is not UTF-8 text (invalid continuation byte); save it as UTF-8",
        ),
        (
            json.JSONDecodeError("Expecting value", '{"a":\n', 6),
            "error: invalid JSON at line 2 column 1 (Expecting value)",
        ),
        (
            sqlite3.DatabaseError("file is not a database"),
            "error: SQLite error (file is not a database); if a run's database is damaged, "
            "run 'clinsynth repair RUN'",
        ),
    ],
)
def test_guard_turns_file_errors_into_one_line(
    capsys: pytest.CaptureFixture[str], exc: BaseException, line: str
) -> None:
    with pytest.raises(typer.Exit) as exit_:
        guard(_raise, exc)
    assert exit_.value.exit_code == 2
    assert _error_line(capsys) == line


def test_guard_names_the_corrupt_qa_data_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from clinsynth.commands.train import load_qa_examples

    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "q", "context": "c"}\n{"question": \n')
    with pytest.raises(typer.Exit):
        guard(load_qa_examples, path)
    line = _error_line(capsys)
    assert line.startswith(f"error: {path}:2: corrupt line (")
    assert line.endswith("; fix or remove it")


def test_broken_squad_file_is_one_line_in_train(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from clinsynth.commands.train import _train_qa

    squad = tmp_path / "eval.json"
    squad.write_bytes('{"data": "caf\xe9"}'.encode("latin-1"))
    kw = {"eval_data": [squad], "real": [], "synthetic": []}
    with pytest.raises(typer.Exit) as exit_:
        guard(_train_qa, kw)
    assert exit_.value.exit_code == 2
    assert _error_line(capsys) == (
        f"error: {squad} is not UTF-8 text (invalid continuation byte); save it as UTF-8"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["generate", "--bogus"], "error: No such option: --bogus"),
        (["inspect"], "error: Missing argument 'run_dir'."),
        (["generate", "-n", "abc"], "error: Invalid value for '-n': "),
        (["train", "a.csv", "b.csv", "c.csv", "d.csv"], "error: Got unexpected extra argument"),
        (["nosuchcommand"], "error: No such command 'nosuchcommand'."),
    ],
)
def test_a_usage_mistake_is_one_error_line(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from clinsynth.cli import app
    from clinsynth.cli_support import run_app

    assert run_app(app, args) == 2
    line = _error_line(capsys)
    assert line.startswith(expected), line
    command = "clinsynth" if args[0] == "nosuchcommand" else f"clinsynth {args[0]}"
    assert line.endswith(f"(see '{command} --help')")


def test_help_and_no_arguments_keep_their_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    from clinsynth.cli import app
    from clinsynth.cli_support import run_app

    assert run_app(app, ["inspect", "--help"]) == 0
    assert "Usage: clinsynth inspect" in capsys.readouterr().out
    assert run_app(app, []) == 2  # help shown, as before, without an error line
    captured = capsys.readouterr()
    assert "Usage: clinsynth" in captured.out and "error:" not in captured.err
