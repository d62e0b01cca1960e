"""``clinsynth correct-labels`` on a small CSV: outputs, policies and one-line errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_notes_cli import PHRASES

CLI = [sys.executable, "-m", "clinsynth.cli", "correct-labels"]


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CLINSYNTH_EMBEDDER="hashing")
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=120)


def write_csv(path: Path) -> tuple[list[str], int]:
    """Ten texts per class built from the class's phrases; row 3 carries a wrong label."""
    labels, lines = [], []
    for label, phrases in PHRASES.items():
        for i in range(10):
            lines.append(f"Case {i}. " + ". ".join(phrases[(i + j) % 7] for j in range(4)))
            labels.append(label)
    flipped = 3
    labels[flipped] = "gi"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "y"])
        writer.writerows([i, t, y] for i, (t, y) in enumerate(zip(lines, labels, strict=True)))
    return labels, flipped


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["relabel", "drop"])
def test_csv_policies(tmp_path: Path, policy: str) -> None:
    data = tmp_path / "data.csv"
    _, flipped = write_csv(data)
    out = tmp_path / "out" / "fixed.csv"
    res = run(
        [
            *(str(data), "--text-col", "text", "--label-col", "y", "--backbone", "hashing"),
            *("--method", "argmax", "--policy", policy, "--out", str(out)),
        ]
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("30 items · ")
    kept = list(csv.DictReader(out.open()))
    decisions = [json.loads(line) for line in (out.parent / "fixed.decisions.jsonl").open()]
    assert len(decisions) == 30 and [d["index"] for d in decisions] == list(range(30))
    assert decisions[flipped]["flagged"] and decisions[flipped]["suggested_label"] == "cardio"
    dropped_path = out.parent / "fixed.dropped.csv"
    if policy == "relabel":
        assert len(kept) == 30 and not dropped_path.exists()
        row = kept[flipped]
        assert (
            row["y"] == "cardio" and row["label_old"] == "gi" and row["label_action"] == "relabel"
        )
    else:
        dropped = list(csv.DictReader(dropped_path.open()))
        assert str(flipped) in {r["id"] for r in dropped}
        assert len(kept) + len(dropped) == 30
        assert all(r["label_action"] == "drop" for r in dropped)
    assert [k for k in kept[0] if k.startswith("label_")] == [
        "label_flagged", "label_old", "label_suggested", "label_action", "label_reason",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "--text-col", "text", "--label-col", "y"], "file not found"),
        (["{data}", "--text-col", "body", "--label-col", "y"], "column 'body' not found"),
        (["{data}", "--text-col", "text"], "needs --text-col and --label-col"),
        (["{data}", "--text-col", "text", "--label-col", "y", "--policy", "x"], "unknown policy"),
        (["--run", "{tmp}"], "not a run directory"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "data.csv"
    write_csv(data)
    res = run([a.format(data=data, tmp=tmp_path) for a in args])
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and message in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
