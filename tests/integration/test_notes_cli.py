"""The ``notes`` recipe end to end through the CLI and the stub server: ingest a labelled CSV,
generate with per-label quotas, then correct the run's labels in a batch pass."""

from __future__ import annotations

import csv
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinsynth.testing.notes_responder import make_responder
from clinsynth.testing.stub_server import StubServer
from tests.integration.test_cli_generate import assert_accounted, cli_env, rows, run_cli

PHRASES = {
    "cardio": [
        "chest pain radiating to the left arm",
        "troponin rise with ST elevation",
        "stent placed in the anterior descending artery",
        "echocardiogram shows reduced ejection fraction",
        "atrial fibrillation with rapid ventricular response",
        "started on beta blocker and anticoagulation",
        "murmur heard at the apex",
    ],
    "neuro": [
        "sudden right sided weakness and slurred speech",
        "head imaging without bleed",
        "generalised tonic clonic seizure",
        "started levetiracetam",
        "EEG shows focal slowing",
        "migraine with visual aura",
        "tremor at rest and shuffling gait",
    ],
    "gi": [
        "epigastric pain after meals",
        "endoscopy shows duodenal ulcer",
        "colonoscopy with polypectomy",
        "raised liver enzymes and jaundice",
        "ultrasound shows gallstones",
        "pancreatitis with raised lipase",
        "reflux symptoms on proton pump inhibitor",
    ],
}


def write_gold(path: Path, per_label: int = 8) -> None:
    """A small fictional labelled CSV (columns note, category)."""
    rng = random.Random(1)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["note", "category"])
        writer.writeheader()
        for label, phrases in PHRASES.items():
            for i in range(per_label):
                body = ". ".join(p.capitalize() for p in rng.sample(phrases, 5))
                writer.writerow({"note": f"Visit {i}. {body}.", "category": label})


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(make_responder("mixed")) as server:
        yield server


@pytest.mark.slow
def test_notes_generate_then_correct_run(stub: StubServer, tmp_path: Path) -> None:
    gold = tmp_path / "gold.csv"
    write_gold(gold)
    env = cli_env(stub.base_url, tmp_path / "store")
    res = run_cli(
        ["ingest-labelled", str(gold), "--text-col", "note", "--label-col", "category"], env
    )
    assert res.returncode == 0, res.stderr
    assert "ingested 24 labelled texts" in res.stdout and "labels: cardio, gi, neuro" in res.stdout

    out = tmp_path / "run"
    args = ["generate", "--recipe", "notes", "--out", str(out), "--no-progress"]
    args += ["--quota", "cardio=3", "--quota", "neuro=3", "--quota", "gi=2"]
    args += ["--max-attempts", "2", "--option", 'label_names={"gi": "digestive system"}']
    res = run_cli(args, env)
    assert res.returncode == 0, res.stderr
    assert "target reached: 8 accepted" in res.stdout
    accepted, _ = assert_accounted(out)
    assert Counter(r["item"]["label"] for r in accepted) == {"cardio": 3, "neuro": 3, "gi": 2}
    gold_ids = {f"gold-{i}#0" for i in range(24)}
    revised = 0
    for rec in accepted:
        item, prov = rec["item"], rec["provenance"]
        assert prov["recipe"] == "notes" and prov["prompt_version"] == "notes-v2"
        assert {"length", "format", "label_leak", "copied_from_example", "privacy"} <= set(
            prov["critic_scores"]
        )
        assert item["example_ids"] == prov["source_ids"] and set(item["example_ids"]) <= gold_ids
        if len(rec["history"]) == 2:
            revised += 1
            (reason,) = rec["history"][0]["report"]["reasons"]
            assert reason.split(":")[0] in {"label_leak", "length"}
    assert revised >= 1, "the mixed scenario sends some first drafts back"
    # Few-shot examples are gold texts of the item's own label.
    with gold.open(newline="") as handle:
        label_of = {row["note"]: row["category"] for row in csv.DictReader(handle)}
    prompts = [
        b["messages"][-1]["content"] for b in (r.body for r in stub.received) if "messages" in b
    ]
    assert len(prompts) >= 8
    for user in prompts:
        label = user.split("\n", 1)[0].removeprefix("Class: ").split(" ")[0]
        examples = re.findall(r"<example>\n(.*?)\n</example>", user, re.S)
        assert len(examples) == 4 and {label_of[e] for e in examples} == {label}

    res = run_cli(
        [
            *("correct-labels", "--run", str(out), "--gold", str(gold), "--text-col", "note"),
            *("--label-col", "category", "--backbone", "hashing", "--policy", "relabel"),
        ],
        env,
    )
    assert res.returncode == 0, res.stderr
    assert "synthetic: 8 items" in res.stdout and "gold: 24 items" in res.stdout
    corrected = rows(out / "corrected.jsonl")
    dropped = rows(out / "label_dropped.jsonl")
    assert sorted(r["id"] for r in corrected + dropped) == sorted(r["id"] for r in accepted)
    for rec in corrected:
        decision = rec["item"]["label_decision"]
        assert decision["method"] == "ours" and decision["backbone"] == "hashing"
        assert rec["item"]["label"] == decision["new_label"]
        assert set(decision["probabilities"]) == set(PHRASES)
        if decision["flagged"]:
            assert rec["provenance"]["label_changes"][-1]["method"] == "ours:relabel"
    gold_decisions = rows(out / "gold_label_decisions.jsonl")
    assert len(gold_decisions) == 24
    assert (out / "accepted.jsonl").read_text().count("label_decision") == 0, "not rewritten"
    summary = json.loads((out / "manifest.json").read_text())
    assert summary["counts"]["accepted"] == 8
