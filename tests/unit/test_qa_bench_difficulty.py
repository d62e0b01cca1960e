"""The benchmark pieces behind the difficulty validation: cross-fit halves and failure bins."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from clinsynth.finetune import QAExample

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def covid() -> ModuleType:
    return _bench("qa_covid")


def _examples(n_articles: int, per: int) -> list[QAExample]:
    out = []
    for a in range(n_articles):
        context = f"Article {a} says the dose was {a + 1} mg. Nothing else."
        answer = f"{a + 1} mg"
        for q in range(per):
            out.append(
                QAExample(
                    id=f"a{a}q{q}",
                    question=f"What dose, question {q}?",
                    context=context,
                    answer_text=answer,
                    answer_start=context.index(answer),
                )
            )
    return out


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_cross_fit_halves_share_no_article_and_cover_all(covid: ModuleType, seed: int) -> None:
    examples = _examples(9, 3)
    half_a, half_b = covid.split_articles(examples, 0.5, seed)
    arts_a = {covid.article_id(examples[i]) for i in half_a}
    arts_b = {covid.article_id(examples[i]) for i in half_b}
    assert not arts_a & arts_b and not set(half_a) & set(half_b)
    assert sorted(half_a + half_b) == list(range(len(examples)))
    assert len(arts_a) in (4, 5) and len(arts_a) + len(arts_b) == 9
    # Every question of an article lands in the same half; the split is reproducible.
    assert all(len(half) % 3 == 0 for half in (half_a, half_b))
    assert covid.split_articles(examples, 0.5, seed) == (half_a, half_b)


def test_different_seeds_give_different_halves(covid: ModuleType) -> None:
    examples = _examples(12, 1)
    splits = {tuple(covid.split_articles(examples, 0.5, s)[0]) for s in range(5)}
    assert len(splits) > 1


@pytest.fixture(scope="module")
def difficulty() -> ModuleType:
    pytest.importorskip("sklearn")
    return _bench("qa_difficulty")


def test_monotone_bins_on_a_rising_fixture(difficulty: ModuleType) -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    failed = np.array([0, 0, 0, 1, 0, 1, 1, 1], dtype=float)
    bins = difficulty.monotone_bins(scores, failed, np.array([0.25, 0.45, 0.65]))
    assert bins["n"] == [2, 2, 2, 2]
    assert bins["failure_rate"] == [0.0, 0.5, 0.5, 1.0]
    assert bins["monotone_non_decreasing"] is True


def test_monotone_bins_flags_a_dip(difficulty: ModuleType) -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    failed = np.array([0, 1, 1, 1, 0, 1], dtype=float)
    bins = difficulty.monotone_bins(scores, failed, np.array([0.25, 0.45]))
    assert bins["failure_rate"] == [0.5, 1.0, 0.5]
    assert bins["monotone_non_decreasing"] is False


def test_monotone_bins_skips_empty_bins(difficulty: ModuleType) -> None:
    bins = difficulty.monotone_bins(
        np.array([0.1, 0.9]), np.array([0.0, 1.0]), np.array([0.3, 0.6])
    )
    assert bins["n"] == [1, 0, 1] and bins["failure_rate"] == [0.0, None, 1.0]
    assert bins["monotone_non_decreasing"] is True


def test_auc_interval_brackets_the_point_estimate(difficulty: ModuleType) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200).astype(float)
    s = y + rng.normal(0, 1.0, 200)
    out = difficulty.auc_with_ci(y, s, seed=0, n_boot=200)
    lo, hi = out["ci95"]
    assert 0.6 < out["roc_auc"] < 0.95 and lo <= out["roc_auc"] <= hi
    assert difficulty.auc_with_ci(np.zeros(5), s[:5], seed=0)["roc_auc"] is None
