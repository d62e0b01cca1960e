"""``correct_labels`` with a fine-tuned backbone (a tiny random BERT built locally)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinsynth.tools.labels import correct_labels
from tests.integration.test_finetune_tiny import tiny_bert  # noqa: F401  (fixture)


@pytest.mark.slow
def test_finetuned_backbone_gives_audited_decisions(tiny_bert: Path) -> None:  # noqa: F811
    texts = [f"patient had fever and cough for {w} days" for w in ("three", "five", "seven")] * 2
    texts += [f"the drug dose was {w} mg given after onset" for w in ("ten", "twenty", "five")] * 2
    labels = ["infection"] * 6 + ["treatment"] * 6
    for method in ("argmax", "cleanlab", "ours"):
        decisions = correct_labels(
            texts,
            labels,
            method=method,
            backbone=str(tiny_bert),
            folds=2,
            policy="relabel",
        )
        assert [d.index for d in decisions] == list(range(12))
        for d in decisions:
            assert d.backbone == str(tiny_bert) and d.method == method
            assert set(d.probabilities) == {"infection", "treatment"}
            assert sum(d.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
            assert d.new_label == (d.suggested_label if d.flagged else d.old_label)
