"""``clinsynth train`` and the trials label corrector on a tiny random BERT (offline, CPU)."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from clinsynth.datasets.trials import load_trials, trial_text
from clinsynth.recipes.trials import TrialsRecipe
from clinsynth.schemas import Task
from clinsynth.testing.tiny_bert import save_tiny_bert
from clinsynth.testing.trials_responder import _CRITERIA, write_hint_table

CLI = [sys.executable, "-m", "clinsynth.cli"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT (hidden 32) whose vocabulary covers the made-up trials."""
    path = tmp_path_factory.mktemp("tiny-bert")
    words = sorted({w for line in _CRITERIA for w in line.split()})
    words += [
        "phase",
        "conditions",
        "interventions",
        "eligibility",
        "criteria",
        "inclusion",
        "exclusion",
    ]
    words += [
        "alphamab",
        "betatinib",
        "gammastat",
        "placebo",
        "lung",
        "breast",
        "cancer",
        "title",
        "summary",
    ]
    return save_tiny_bert(path, [".", ":", ";", "-", *words])


def _data(tmp: Path) -> tuple[Path, Path, Path]:
    real = write_hint_table(tmp / "real.csv", per_label=6)
    with real.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    eval_path = tmp / "eval.csv"
    with eval_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[::4])  # 8 trials that are also in the real table
    run = tmp / "run"
    run.mkdir()
    rng = random.Random(3)
    with (run / "accepted.jsonl").open("w") as fh:
        for i, rec in enumerate(load_trials(real)[:12]):
            item = rec.model_copy(update={"id": f"SYN-{i}", "source": "synthetic"})
            item = item.model_copy(update={"title": f"study {rng.choice(_CRITERIA)}"})
            fh.write(json.dumps({"id": f"t{i}", "status": "accepted", "item": item.model_dump()}))
            fh.write("\n")
    return real, eval_path, run


def test_train_real_synthetic_hybrid(tiny_bert: Path, tmp_path: Path) -> None:
    real, eval_path, run = _data(tmp_path)
    out = tmp_path / "results.json"
    args = ["train", "--real", str(real), "--synthetic", str(run), "--eval", str(eval_path)]
    args += ["--backbone", str(tiny_bert), "--seeds", "0,1", "--max-steps", "3"]
    args += ["--max-length", "64", "--batch-size", "8", "--out", str(out)]
    args += ["--save-model", str(tmp_path / "models")]
    wide = {**os.environ, "COLUMNS": "200"}  # table rows unwrapped, to find them in stdout
    res = subprocess.run(
        CLI + args, capture_output=True, text=True, timeout=300, check=False, env=wide
    )
    assert res.returncode == 0, res.stderr
    assert "dropped 8 real and 0 synthetic" in res.stderr
    assert "mean ± sd over seeds" in res.stdout
    report = json.loads(out.read_text())
    assert report["data"]["n_eval"] == 8 and report["seeds"] == [0, 1]
    assert report["backbone"]["fell_back"] is False
    assert report["config"]["positive_label"] == "success"
    sets = report["sets"]
    assert list(sets) == ["real", "synthetic", "hybrid"]
    assert sets["real"]["n_train"] == 31 - 8 and sets["synthetic"]["n_train"] == 12
    assert sets["hybrid"]["n_train"] == 23 + 12
    for res_set in sets.values():
        assert len(res_set["runs"]) == 2
        for metric in ("accuracy", "roc_auc", "pr_auc", "f1", "precision", "recall"):
            assert res_set["summary"][metric]["n"] == 2
            assert 0.0 <= res_set["summary"][metric]["mean"] <= 1.0
    assert (tmp_path / "models" / "real" / "config.json").is_file()
    for name, res_set in sets.items():  # baselines beside each set, on the same eval split
        assert set(res_set["baselines"]) == {"majority", "tfidf_lr"}
        assert res_set["baselines"]["majority"]["runs"][0]["n"] == 8
        assert f"{name}: tfidf_lr" in res.stdout and f"{name}: majority" in res.stdout
        flagged = f"warning: {name}: the fine-tuned model does not beat" in res.stderr
        assert flagged is not res_set["vs_baselines"]["beats_all"]

    # the saved real-data classifier drives the recipe's label corrector
    model_dir = tmp_path / "models" / "real"
    item = load_trials(eval_path)[0].model_copy(update={"id": "SYN-x", "source": "synthetic"})
    probe = TrialsRecipe({"classifier_path": str(model_dir)})
    classifier = probe.classifier()
    assert classifier is not None
    p_success = float(
        classifier.predict_proba([trial_text(item)])[0][classifier.labels.index("success")]
    )
    weak = "success" if p_success < 0.5 else "failure"
    strong = "failure" if weak == "success" else "success"
    task = Task(id="trials-0-000000", index=0, recipe="trials", label=weak)
    disagree = TrialsRecipe({"classifier_path": str(model_dir), "disagreement_threshold": 0.5})
    out_item = disagree.correct_label(task, dict(item.model_dump(), label=weak))
    assert out_item.item is not None and out_item.item["label"] == strong
    assert out_item.change is not None and out_item.change.probability is not None
    assert out_item.change.probability < 0.5
    assert out_item.item["label_check"]["decision"] == "relabelled"
    keep = TrialsRecipe({"classifier_path": str(model_dir), "disagreement_threshold": 0.0})
    kept = keep.correct_label(task, dict(item.model_dump(), label=weak))
    assert kept.item is not None and kept.item["label"] == weak and kept.change is None
    assert kept.item["label_check"]["probability"] == pytest.approx(out_item.change.probability)


def test_train_user_errors(tmp_path: Path) -> None:
    real = write_hint_table(tmp_path / "real.csv")
    for args, message in (
        (["train", "--real", str(real)], "--eval PATH is required"),
        (["train", "--real", str(real), "--eval", str(real), "--seeds", "a"], "--seeds expects"),
        (["train", "--eval", str(real)], "no training data"),
        (["train", "--real", str(tmp_path / "x.csv"), "--eval", str(real)], "not found"),
    ):
        res = subprocess.run(CLI + args, capture_output=True, text=True, timeout=120, check=False)
        assert res.returncode == 2, res.stderr
        assert message in res.stderr and "Traceback" not in res.stderr


def test_train_qa_reader_real_synthetic(tiny_bert: Path, tmp_path: Path) -> None:
    context = "adults with lung cancer and measurable disease were given alphamab for twelve weeks"
    qas = [
        {
            "id": "q1",
            "question": "which drug",
            "answers": [{"text": "alphamab", "answer_start": 58}],
        },
        {"id": "q2", "question": "who had measurable disease", "answers": []},
    ]
    assert context[58:66] == "alphamab"
    squad = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}
    real = tmp_path / "real.json"
    real.write_text(json.dumps(squad))
    run = tmp_path / "qa-run"
    run.mkdir()
    item = {"question": "for how long", "context": context, "answer": "twelve weeks"}
    item |= {"answerable": True, "answer_start": context.index("twelve weeks")}
    (run / "accepted.jsonl").write_text(
        json.dumps({"id": "qa-0-000000", "status": "accepted", "item": item}) + "\n"
    )
    out = tmp_path / "qa.json"
    args = ["train", "--task", "qa", "--real", str(real), "--synthetic", str(run)]
    args += ["--eval", str(real), "--backbone", str(tiny_bert), "--seeds", "0,1"]
    args += ["--max-steps", "2", "--max-length", "48", "--batch-size", "4", "--out", str(out)]
    res = subprocess.run(CLI + args, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert report["task"] == "qa" and list(report["sets"]) == ["real", "synthetic", "hybrid"]
    assert report["sets"]["hybrid"]["n_train"] == 3
    for res_set in report["sets"].values():
        for metric in ("exact_match", "f1", "reference_overlap"):
            assert res_set["summary"][metric]["n"] == 2
            assert 0.0 <= res_set["summary"][metric]["mean"] <= 100.0
