"""Pure, measurable checks used by the critic. No agent or LLM imports here."""

from clinsynth.evaluators.answer import (
    UNANSWERABLE,
    answer_validity_check,
    is_unanswerable,
    locate_answer,
)
from clinsynth.evaluators.form import question_form_check
from clinsynth.evaluators.overlap import (
    lexical_overlap,
    longest_common_token_run,
    ngram_overlap,
    overlap_check,
)
from clinsynth.evaluators.privacy import PhiHit, find_phi, privacy_check
from clinsynth.evaluators.similarity import cosine, max_cosine, near_duplicate_check
from clinsynth.evaluators.text import content_words, normalize, tokens

__all__ = [
    "UNANSWERABLE",
    "PhiHit",
    "answer_validity_check",
    "content_words",
    "cosine",
    "find_phi",
    "is_unanswerable",
    "lexical_overlap",
    "locate_answer",
    "longest_common_token_run",
    "max_cosine",
    "near_duplicate_check",
    "ngram_overlap",
    "normalize",
    "overlap_check",
    "privacy_check",
    "question_form_check",
    "tokens",
]
