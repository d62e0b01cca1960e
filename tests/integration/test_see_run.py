"""Seeing a run: start-up phases and progress without a terminal, ``inspect`` summary and items,
``export`` through the CLI, the passage-once layout (row size measured on a real run), the
report's new sections, ``--version`` and ``--help``. One stub run (mixed scripted replies:
accepted, revised, relabelled and rejected items) serves the module."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinsynth.testing.qa_responder import make_responder
from clinsynth.testing.stub_server import StubServer
from tests.integration.test_cli_generate import assert_accounted, cli_env, rows, run_cli


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with StubServer(make_responder("mixed")) as server:
        yield server


@pytest.fixture(scope="module")
def run(
    stub: StubServer, demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str], str]:
    """A finished qa run made with progress on and no terminal; its stderr."""
    out = tmp_path_factory.mktemp("see") / "run"
    env = cli_env(stub.base_url, demo_store_path)
    args = ["generate", "-n", "8", "--max-attempts", "2", "--concurrency", "2", "--out", str(out)]
    res = run_cli(args, env)
    assert res.returncode == 0, res.stderr
    return out, env, res.stderr


def test_start_up_phases_and_progress_lines_without_a_terminal(
    run: tuple[Path, dict[str, str], str],
) -> None:
    _, _, stderr = run
    for phase in (
        "loading libraries",
        "checking the endpoint",
        "opening the store",
        "loading models",
    ):
        assert re.search(rf"✓ {phase}.* \(\d+\.\d s\)", stderr), stderr
    assert re.search(r"accepted 8/8 · rejected \d+ · attempts \d+ · tokens [\d,]+ · \d+ s", stderr)
    assert "…" not in stderr and "━" not in stderr, "no bar cut to a width"
    assert "Loading weights" not in stderr and "it/s]" not in stderr


def test_rows_store_the_passage_once_and_read_back_whole(
    run: tuple[Path, dict[str, str], str],
) -> None:
    out, _, _ = run
    passages = [json.loads(x) for x in (out / "passages.jsonl").read_text().splitlines()]
    ids = [p["id"] for p in passages]
    assert len(ids) == len(set(ids)), "each passage once"
    raw = (out / "accepted.jsonl").read_text().splitlines()
    assert raw and all('"context":' not in line for line in raw)
    whole = rows(out / "accepted.jsonl")
    # Row size, measured: each row as written against the same row with its passage inline.
    sizes = [
        (len(line.encode()), len(json.dumps(row, ensure_ascii=False).encode()))
        for line, row in zip(raw, whole, strict=True)
    ]
    for (written, inline), row in zip(sizes, whole, strict=True):
        item = row["item"]
        assert item["context"] and item["context_id"] in ids
        assert inline - written >= 2 * len(item["context"].encode()) - 64
        if item["answerable"]:
            assert item["context"][item["answer_start"] : item["answer_end"]] == item["answer"]
    mean_written = sum(w for w, _ in sizes) / len(sizes)
    mean_inline = sum(i for _, i in sizes) / len(sizes)
    print(f"row bytes: {mean_written:.0f} written vs {mean_inline:.0f} with passages inline")
    assert mean_written < mean_inline


def inspect_json(out: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    res = run_cli(["inspect", str(out), "--json", *args], env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_inspect_summary_and_sample_where_sort(run: tuple[Path, dict[str, str], str]) -> None:
    out, env, _ = run
    accepted, rejected = assert_accounted(out)
    text = run_cli(["inspect", str(out), "--sample", "3"], env)
    assert text.returncode == 0, text.stderr
    assert "{'name'" not in text.stdout, "no raw Python dicts"
    for label in ("state", "stop reason", "surplus", "tokens", "cost", "time", "lower is better"):
        assert label in text.stdout
    panels = re.findall(r"╭─ (qa-0-\d{6}) · accepted · ", text.stdout)
    assert len(panels) == 3 and "question" in text.stdout and "scores" in text.stdout
    summary = inspect_json(out, env)
    assert summary["accepted"] == 8 and summary["rejected"] == len(rejected)
    assert {s["name"] for s in summary["scores"]} >= {"lexical_overlap", "difficulty"}
    assert summary["usage"]["calls"] > 0 and summary["wall_s"] > 0
    by_overlap = inspect_json(out, env, "--sample", "4", "--sort", "near_duplicate")
    values = [i["provenance"]["critic_scores"]["near_duplicate"] for i in by_overlap["items"]]
    assert len(values) == 4 and values == sorted(values, reverse=True)
    low = inspect_json(out, env, "--sample", "50", "--where", "near_duplicate<0.1")
    expected = sum(1 for r in accepted if r["provenance"]["critic_scores"]["near_duplicate"] < 0.1)
    assert len(low["items"]) == expected
    if rejected:
        shown = run_cli(["inspect", str(out), "--sample", "2", "--status", "rejected"], env)
        assert "· rejected ·" in shown.stdout and "reason" in shown.stdout
    bad = run_cli(["inspect", str(out), "--where", "difficulty>>1"], env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot read --where")


def test_export_through_the_cli(run: tuple[Path, dict[str, str], str], tmp_path: Path) -> None:
    import pandas as pd

    out, env, _ = run
    res = run_cli(["export", str(out), "--format", "parquet", "--out", str(tmp_path / "ds")], env)
    assert res.returncode == 0, res.stderr
    assert "exported 8 rows (id, context, question, answers)" in res.stdout
    assert "Creating parquet" not in res.stderr
    frame = pd.read_parquet(tmp_path / "ds" / "train.parquet")
    assert len(frame) == 8 and set(frame.columns) == {"id", "context", "question", "answers"}
    card = (tmp_path / "ds" / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n") and "demo_corpus" in card
    bad = run_cli(["export", str(out), "--format", "xlsx"], env)
    assert bad.returncode == 2 and "unknown --format 'xlsx'" in bad.stderr


def test_report_has_examples_costs_config_and_score_directions(
    run: tuple[Path, dict[str, str], str],
) -> None:
    out, env, _ = run
    res = run_cli(["report", str(out)], env)
    assert res.returncode == 0, res.stderr
    page = (out / "report.html").read_text()
    for heading in ("Cost and time", "Critic scores", "Example items", "Run configuration"):
        assert f"<h2>{heading}</h2>" in page
    assert "lower is better" in page and "fails above 0.5 → revise" in page
    assert re.search(r"best near_duplicate: [\d.]+", page) and "per accepted item" in page
    assert "max_attempts" in page and "qa-v3" in page
    _, rejected = assert_accounted(out)
    if rejected:
        assert "Rejected items" in page and rejected[0]["reasons"][0].split(":")[0] in page


def test_version_help_defaults_and_switches() -> None:
    env: dict[str, str] = {}
    version = run_cli(["--version"], env)
    assert version.returncode == 0 and re.fullmatch(r"clinsynth \S+\n", version.stdout)
    text = run_cli(["generate", "--help"], {"COLUMNS": "200"}).stdout
    for option, default in (
        ("-n", "10"),
        ("--concurrency", "4"),
        ("--max-attempts", "3"),
        ("--store", "$CLINSYNTH_STORE"),
        ("--out", "runs/<recipe>-<seed>"),
    ):
        line = next(x for x in text.splitlines() if re.search(rf"\s{re.escape(option)}\s", x))
        assert f"[default: {default}" in line, line
    overwrite = next(x for x in text.splitlines() if "--overwrite" in x)
    assert "<bool>" not in overwrite and "--no-overwrite" not in overwrite
