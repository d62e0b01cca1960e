"""bench/label_noise_select.py on a tiny fixture: disjoint dev / test rows, its own noise seeds,
the chosen settings are the best-scoring candidate, and the tool's defaults are the committed
selection's."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from clinsynth.tools.labels import OursSettings
from clinsynth.tools.labels.models import HEAD_C

REPO = Path(__file__).resolve().parents[2]


def _bench(name: str) -> ModuleType:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "bench"))


@pytest.fixture(scope="module")
def select() -> ModuleType:
    return _bench("label_noise_select")


def _blobs(n_per: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 4
    x = np.vstack([rng.normal(c, 1.0, (n_per, 8)) for c in centres])
    y = np.repeat(np.arange(3), n_per)
    texts = [f"text {i}" for i in range(len(y))]
    texts[5] = texts[4]  # a duplicate text: both rows must land on the same side
    return texts, x, y


def test_dev_and_test_rows_are_disjoint_halves(select: ModuleType) -> None:
    data = sys.modules["label_noise_data"]
    texts, _, y = _blobs(20, 0)
    dev, test = data.split_dev_test(texts, y, seed=0)
    assert set(dev.tolist()).isdisjoint(test.tolist())
    assert sorted(dev.tolist() + test.tolist()) == list(range(len(y)))
    assert (4 in dev) == (5 in dev)
    assert abs(len(dev) - len(test)) <= 2
    assert all(np.bincount(y[dev], minlength=3) >= 8)
    dev_seeds = {s for v in data.DEV_NOISE_SEEDS.values() for s in v}
    test_seeds = {s for v in data.TEST_NOISE_SEEDS.values() for s in v}
    assert dev_seeds and test_seeds and dev_seeds.isdisjoint(test_seeds)


def test_selection_log_on_a_tiny_fixture(select: ModuleType, tmp_path: Path) -> None:
    data = sys.modules["label_noise_data"]
    texts, x, y = _blobs(30, 1)
    dev, _ = data.split_dev_test(texts, y, seed=0)
    parts = {"blobs": select.DevPart(x[dev], y[dev], np.zeros(len(dev), dtype=bool), 3)}
    grid = {
        "repeats": (1,),
        "filter_by": ("both", "prune_by_noise_rate"),
        "min_margin": (0.0, 0.3),
        "knn_k": (0, 5),
    }
    log = select.select(
        parts,
        seeds={0.2: (991, 992)},
        grid=grid,
        head_cs=(1.0, 10.0),
        downstream_cs=(1.0, 10.0),
        folds=3,
    )
    candidates = log["candidates"]
    assert len(candidates) == 8
    scores = [c["mean_f1"] for c in candidates]
    assert scores == sorted(scores, reverse=True)
    chosen = log["chosen"]
    best = candidates[0]["settings"]
    assert chosen["ours"] == select.settings_of(best).model_dump()
    assert chosen["ours_mean_f1_on_dev"] == scores[0]
    assert 0.5 < scores[0] <= 1.0, "three well-separated blobs: planted flips are findable"
    heads = log["head_c_candidates"]
    assert chosen["head_c"] == max((1.0, 10.0), key=lambda c: (heads[str(c)]["blobs"], -c))
    downs = log["downstream_c_candidates"]
    assert downs[str(chosen["downstream_c"])]["blobs"] == max(v["blobs"] for v in downs.values())
    assert set(log["reference_f1_on_dev"]) == {"argmax", "cleanlab"}
    json.dumps(log)  # the log is written as JSON


def test_tool_defaults_are_the_committed_selection() -> None:
    path = REPO / "bench" / "results" / "label_noise_selection.json"
    chosen = json.loads(path.read_text())["chosen"]
    assert OursSettings(**chosen["ours"]) == OursSettings()
    assert float(chosen["head_c"]) == HEAD_C


def test_views_script_gives_probabilities_and_a_ceiling_blind_to_the_noise() -> None:
    views = _bench("label_noise_views")
    texts = [f"alpha beta note {i}" if i % 2 else f"gamma delta note {i}" for i in range(60)]
    _, x, _ = _blobs(20, 1)
    y = np.arange(60) % 2
    table = views.views(x, texts, head_c=1.0)
    assert {"embedding", "tfidf C=1", "embedding+tfidf C=10", "average"} <= set(table)
    noisy = y.copy()
    noisy[:6] = 1 - noisy[:6]
    for name, fit in table.items():
        proba = fit(noisy, y, 2, 0)
        assert proba.shape == (60, 2), name
        assert np.allclose(proba.sum(axis=1), 1.0), name
    ceiling = table["ceiling (head fitted on clean labels)"]
    other = y.copy()
    other[10:20] = 1 - other[10:20]
    assert np.allclose(ceiling(noisy, y, 2, 0), ceiling(other, y, 2, 0))
    assert not np.allclose(table["embedding"](noisy, y, 2, 0), table["embedding"](other, y, 2, 0))
