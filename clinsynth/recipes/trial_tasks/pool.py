"""Which training-split trials can serve a task, and the seeded choice of a task's source
trial, answer position and real-trial distractors. Evaluation-split trials never enter a pool:
it is read with ``where={"split": "train"}``."""

from __future__ import annotations

import random

from clinsynth.datasets.trials import TrialRecord, record_of
from clinsynth.evaluators.task_key import LETTERS
from clinsynth.evaluators.text import normalize
from clinsynth.memory.store import VectorStore
from clinsynth.recipes.trial_tasks.sources import answer_text, eligible, facts_of


class TaskPool:
    """The training trials eligible for one task type, with what picking needs of them."""

    def __init__(
        self, records: list[TrialRecord], task_type: str, *, min_chars: int, max_chars: int
    ) -> None:
        self.task_type = task_type
        kept = [
            r for r in records if eligible(task_type, r, min_chars=min_chars, max_chars=max_chars)
        ]
        self.ids = sorted(r.id for r in kept)
        self.answers = {r.id: normalize(answer_text(task_type, r)) for r in kept}
        self.labels = {r.id: facts_of(r).completion() for r in kept}

    @classmethod
    def from_store(
        cls, store: VectorStore, task_type: str, *, min_chars: int, max_chars: int
    ) -> TaskPool:
        """The pool of the training split of ``store``."""
        chunks = store.get(store.ids(where={"split": "train"}))
        records = [record_of(c) for c in chunks if c.metadata.get("split") == "train"]
        return cls(records, task_type, min_chars=min_chars, max_chars=max_chars)

    def order(self, seed: int, label: str | None = None) -> list[str]:
        """The pool's ids in this run's seeded order (only those with ``label``, if given)."""
        ids = [i for i in self.ids if label is None or self.labels.get(i) == label]
        random.Random(f"{seed}:order:{self.task_type}").shuffle(ids)
        return ids

    def distractor_ids(self, source: str, rng: random.Random, k: int = 3) -> list[str]:
        """``k`` other trials whose answer text differs from the source's and each other's."""
        seen = {self.answers.get(source, "")}
        picked: list[str] = []
        candidates = [i for i in self.ids if i != source]
        rng.shuffle(candidates)
        for trial_id in candidates:
            text = self.answers[trial_id]
            if text and text not in seen:
                seen.add(text)
                picked.append(trial_id)
                if len(picked) == k:
                    break
        return picked


def answer_letter(seed: int, index: int) -> str:
    """The correct option's letter for task ``index``: each block of four consecutive tasks
    uses every letter once, in a seeded order, so positions are balanced by construction."""
    block = random.Random(f"{seed}:positions:{index // len(LETTERS)}").sample(LETTERS, len(LETTERS))
    return block[index % len(LETTERS)]
