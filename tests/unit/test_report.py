"""The run report: summary numbers from hand-made rows, the self-contained page, the CLI."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clinsynth.evaluators.report import ReportError, json_table, summarize, write_report

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def record(i: int, status: str, attempts: int, scores: dict[str, float], **extra: Any) -> str:
    row = {
        "id": f"qa-0-{i:06d}",
        "status": status,
        "provenance": {"attempts": attempts, "critic_scores": scores, "label_changes": []},
        "reasons": [],
        **extra,
    }
    return json.dumps(row)


def make_run(path: Path) -> Path:
    path.mkdir()
    (path / "manifest.json").write_text(
        json.dumps({"recipe": {"name": "qa"}, "stop_reason": "target reached"})
    )
    ids = [json.dumps({"id": f"qa-0-{i:06d}"}) for i in range(6)]
    (path / "started.jsonl").write_text("\n".join(ids) + "\n")
    change = {"method": "answer-not-located", "field": "answer"}
    accepted = [
        record(0, "accepted", 1, {"lexical_overlap": 0.1, "difficulty": 0.9}),
        record(1, "accepted", 2, {"lexical_overlap": 0.2, "difficulty": 0.7}),
        record(
            2,
            "accepted",
            1,
            {"lexical_overlap": 0.0, "difficulty": 0.8},
            provenance={"attempts": 1, "critic_scores": {}, "label_changes": [change]},
        ),
    ]
    rejected = [
        record(3, "rejected", 3, {"lexical_overlap": 0.9}, reasons=["lexical_overlap: 9 of 10"]),
        record(
            4,
            "rejected",
            3,
            {"lexical_overlap": 0.8},
            reasons=["lexical_overlap: 8 of 10", "difficulty: too easy", "gave up after 3"],
        ),
    ]
    (path / "accepted.jsonl").write_text("\n".join(accepted) + "\n")
    (path / "rejected.jsonl").write_text("\n".join(rejected) + "\n")
    return path


def test_summary_counts_from_rows(tmp_path: Path) -> None:
    s = summarize(make_run(tmp_path / "run"))
    assert (s.recipe, s.started, s.accepted, s.rejected, s.unfinished) == ("qa", 6, 3, 2, 1)
    assert s.relabelled == 1 and s.label_changes == {"answer-not-located": 1}
    assert s.rejection_reasons == {"lexical_overlap": 2, "difficulty": 1, "gave up after 3": 1}
    assert s.attempts == {"accepted": {1: 2, 2: 1}, "rejected": {3: 2}}
    assert s.scores["lexical_overlap"] == {"accepted": [0.1, 0.2], "rejected": [0.9, 0.8]}
    assert s.scores["difficulty"] == {"accepted": [0.9, 0.7]}


def test_surplus_is_neither_accepted_nor_rejected(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    legacy = record(5, "rejected", 1, {}, reasons=["surplus: the target was reached first"])
    with (run / "rejected.jsonl").open("a") as fh:
        fh.write(legacy + "\n")
    (run / "surplus.jsonl").write_text(
        record(6, "surplus", 1, {}, reasons=["surplus: cancelled in flight"]) + "\n"
    )
    s = summarize(run)
    assert (s.started, s.accepted, s.rejected, s.surplus, s.unfinished) == (7, 3, 2, 2, 0)
    assert "surplus" not in s.rejection_reasons and s.attempts["rejected"] == {3: 2}
    page = write_report(run).read_text()
    assert "acceptance rate 60.0%" in page  # 3 of 5 judged; the 2 surplus are not counted
    assert "<td>surplus (target reached first)</td><td>2</td>" in page


def test_page_is_self_contained_with_analysis_files(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    (run / "analysis").mkdir()
    (run / "analysis" / "tsne.png").write_bytes(PNG_1PX)
    (run / "analysis" / "similarity.json").write_text(
        json.dumps({"across": {"mean": 0.123456}, "n": [3, 4], "note": "<b>x</b>"})
    )
    page = write_report(run).read_text()
    assert "<script" not in page and not re.search(r"src=\"(?!data:)", page)
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert images == [
        "acceptance funnel",
        "attempts per item",
        "lexical_overlap",
        "difficulty",
        "tsne.png",
    ]
    assert "<td>lexical_overlap</td><td>2</td>" in page
    assert "<td>across.mean</td><td>0.1235</td>" in page and "<td>n</td><td>3, 4</td>" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert base64.b64encode(PNG_1PX).decode() in page


def test_json_table_of_a_list_of_rows() -> None:
    html = json_table([{"a": 1, "b": {"c": 2}}, {"a": 3}])
    assert "<th>a</th><th>b</th>" in html and "<td>{&quot;c&quot;: 2}</td>" in html


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "not a run directory (no manifest.json)"),
    ],
)
def test_foreign_directories_are_report_errors(tmp_path: Path, setup: Any, message: str) -> None:
    path = tmp_path / "x"
    setup(path)
    with pytest.raises(ReportError, match=re.escape(message)):
        summarize(path)


@pytest.mark.slow
def test_cli_report_and_one_line_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    cli = [sys.executable, "-m", "clinsynth.cli", "report"]
    ok = subprocess.run([*cli, str(run)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert (run / "report.html").is_file() and "report written to" in ok.stdout
    bad = subprocess.run([*cli, str(tmp_path)], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error:")
    assert "not a run directory" in bad.stderr
