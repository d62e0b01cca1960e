"""Which training-split trials can serve a task, and the seeded choice of a task's source
trial, answer position and real-trial distractors. Evaluation-split trials never enter a pool:
it is read with ``where={"split": "train"}``.

Real distractors come from the trials *nearest in topic* (title, conditions and interventions
sharing the most content words), not from random trials: random trials' criteria name other
diseases, so a solver that only matches the option to the trial's topic picked the right one
84–96 % of the time (bench/results/trial_tasks_solvers_real.json)."""

from __future__ import annotations

import random

from clinsynth.datasets.trials import TrialRecord, record_of
from clinsynth.evaluators.overlap import lexical_overlap
from clinsynth.evaluators.sentences import question_words
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
        self.topics = {r.id: topic_words(r) for r in kept}

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
        """``k`` other trials nearest in topic whose answer text differs from the source's and
        each other's (:func:`nearest_distinct`)."""
        return nearest_distinct(source, self.ids, self.topics, self.answers, rng, k)


def topic_words(record: TrialRecord) -> set[str]:
    """Content words of a trial's title, conditions and interventions."""
    return question_words(" ".join([record.title or "", *record.conditions, *record.interventions]))


def nearest_distinct(
    source: str,
    ids: list[str],
    topics: dict[str, set[str]],
    answers: dict[str, str],
    rng: random.Random,
    k: int = 3,
    max_answer_overlap: float = 0.8,
) -> list[str]:
    """The ``k`` trials of ``ids`` whose topic words overlap the source's most (Jaccard; ties
    in seeded order), skipping a trial whose answer text is empty, equal to one already taken,
    or shares more than ``max_answer_overlap`` of its words with the source's answer (a
    sister trial's near-copy would make the item ambiguous)."""
    mine = topics.get(source, set())
    candidates = [i for i in ids if i != source]
    rng.shuffle(candidates)

    def closeness(trial_id: str) -> float:
        theirs = topics.get(trial_id, set())
        return len(mine & theirs) / max(1, len(mine | theirs))

    candidates.sort(key=closeness, reverse=True)  # stable: the shuffle breaks ties
    truth = answers.get(source, "")
    seen = {truth}
    picked: list[str] = []
    for trial_id in candidates:
        text = answers.get(trial_id, "")
        if not text or text in seen or lexical_overlap(text, truth) > max_answer_overlap:
            continue
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
