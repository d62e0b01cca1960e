"""COVID-QA helpers shared by the qa_* benchmarks: loading, articles, sentences, baselines.

Imports only the standard library, numpy, clinsynth.finetune and clinsynth.evaluators (the
latter needs snowballstemmer beside pydantic on a bare accelerator machine).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from clinsynth.evaluators.sentences import question_words as content_words  # noqa: E402
from clinsynth.evaluators.sentences import sentence_spans as sentences  # noqa: E402
from clinsynth.finetune import QAExample, exact_match, f1, load_squad_json  # noqa: E402

_DATA_OVERRIDE: list[Path] = []


def set_data_dir(path: Path | None) -> None:
    """Read COVID-QA from ``path`` (a folder holding train.json and dev.json) from now on."""
    _DATA_OVERRIDE[:] = [] if path is None else [path]


def data_dir() -> Path:
    """The covid_qa folder: ``set_data_dir``'s, else $CLINSYNTH_SHARED_DATA/covid_qa, else
    ../shared/data/covid_qa next to the repository."""
    if _DATA_OVERRIDE:
        path = _DATA_OVERRIDE[0]
    else:
        root = Path(os.environ.get("CLINSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
        path = root / "covid_qa"
    if not (path / "train.json").is_file() or not (path / "dev.json").is_file():
        raise SystemExit(
            f"COVID-QA not found under {path}; pass --data or set CLINSYNTH_SHARED_DATA"
        )
    return path


def passage(example: QAExample, chars: int, seed: int) -> QAExample:
    """``example`` read in a ``chars``-long passage of its context that holds the gold answer
    at a seeded random position (cut at whitespace); unchanged if the context is shorter."""
    ctx = example.context
    if len(ctx) <= chars or example.answer_start is None or example.answer_end is None:
        return example
    rng = random.Random(f"{seed}:{example.id}")
    span = example.answer_end - example.answer_start
    lo_min = max(0, example.answer_end - chars)
    lo_max = min(example.answer_start, len(ctx) - chars)
    lo = rng.randint(lo_min, lo_max) if span < chars and lo_min <= lo_max else example.answer_start
    hi = min(len(ctx), max(lo + chars, example.answer_end))
    while lo > 0 and not ctx[lo - 1].isspace() and lo < example.answer_start:
        lo += 1
    while hi < len(ctx) and not ctx[hi].isspace() and hi - lo < chars + 40:
        hi += 1
    data = example.model_dump() | {"context": ctx[lo:hi], "answer_start": example.answer_start - lo}
    return QAExample.model_validate(data)


def load_split(name: str, chars: int | None = None, seed: int = 0) -> list[QAExample]:
    """COVID-QA ``name`` (train/dev), read in passages of ``chars`` (None: whole articles)."""
    examples = load_squad_json(data_dir() / f"{name}.json")
    return examples if chars is None else [passage(ex, chars, seed) for ex in examples]


def article_id(example: QAExample) -> str:
    """A stable id of the example's article (its context): first 12 hex digits of SHA-1."""
    return hashlib.sha1(example.context.encode("utf-8")).hexdigest()[:12]


def split_articles(
    examples: Sequence[QAExample], share: float, seed: int
) -> tuple[list[int], list[int]]:
    """Indices of examples in a seeded ``share`` of the articles, and of the rest."""
    ids = sorted({article_id(e) for e in examples})
    random.Random(seed).shuffle(ids)
    first = set(ids[: round(share * len(ids))])
    a = [i for i, e in enumerate(examples) if article_id(e) in first]
    b = [i for i, e in enumerate(examples) if article_id(e) not in first]
    return a, b


def best_overlap_sentence(example: QAExample) -> tuple[int, int]:
    """Span of the article sentence sharing the most content words with the question."""
    q = content_words(example.question)
    spans = sentences(example.context)
    return max(spans, key=lambda s: len(q & content_words(example.context[s[0] : s[1]])))


def sentence_baseline(examples: Sequence[QAExample]) -> dict[str, float]:
    """Trivial reader: answer with the sentence that overlaps the question most (EM/F1 %)."""
    em = f1s = 0.0
    for ex in examples:
        a, b = best_overlap_sentence(ex)
        pred = ex.context[a:b]
        em += exact_match(pred, ex.answer_text)
        f1s += f1(pred, ex.answer_text)
    n = max(1, len(examples))
    return {"exact_match": 100 * em / n, "f1": 100 * f1s / n, "n": len(examples)}
