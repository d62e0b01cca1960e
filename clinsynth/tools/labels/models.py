"""The label corrector's vocabulary: policies, methods, decisions and their evidence."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from clinsynth.schemas import LabelChange

Policy = Literal["relabel", "drop", "flag"]
Method = Literal["ours", "cleanlab", "argmax"]
Action = Literal["keep", "flag", "relabel", "drop"]

EMBEDDING_BACKBONES = ("minilm", "hashing")
"""Backbones used frozen (embeddings + logistic regression); any other name is fine-tuned."""
DEFAULT_BACKBONE = "minilm"
HEAD_C = 1.0
"""Inverse regularisation of the logistic-regression head on frozen embeddings, shared by all
detectors; chosen on development rows by ``bench/label_noise_select.py``."""


class LabelError(ValueError):
    """Inputs the corrector cannot work with (mismatched lengths, too few items per class)."""


class Adjudication(BaseModel):
    """An LLM's verdict on one flagged item (structured output)."""

    rationale: str = Field(description="one or two sentences on which label fits and why")
    label: str = Field(description="the best label, exactly as listed, or 'uncertain'")


class LabelDecision(BaseModel):
    """What the corrector decided about one item, with the evidence."""

    index: int = Field(description="position of the item in the input")
    old_label: str
    new_label: str | None = Field(description="label after the policy; None when dropped")
    suggested_label: str = Field(description="the classifier's most probable label")
    flagged: bool = Field(description="the detector thinks the given label is wrong")
    action: Action
    probabilities: dict[str, float] = Field(description="out-of-fold class probabilities")
    self_confidence: float = Field(description="probability of the given label")
    margin: float = Field(description="P(suggested) - P(given); 0 when they are the same")
    method: str
    backbone: str
    reason: str
    issue_rank: int | None = Field(
        default=None,
        description="among flagged items, 1 = most likely wrong (cleanlab's normalized margin)",
    )
    adjudication: Adjudication | None = None

    @property
    def changed(self) -> bool:
        """True when the label was changed or the item dropped."""
        return self.new_label != self.old_label

    def label_change(self, field: str = "label") -> LabelChange | None:
        """The decision as a :class:`LabelChange` for an item's provenance (None: kept as is)."""
        if not self.flagged and not self.changed:
            return None
        return LabelChange(
            field=field,
            old=self.old_label,
            new=self.new_label,
            method=f"{self.method}:{self.action}",
            reason=self.reason,
            probability=self.probabilities.get(self.new_label or self.suggested_label),
        )


FilterBy = Literal["both", "prune_by_noise_rate", "prune_by_class", "confident_learning"]


class OursSettings(BaseModel):
    """Knobs of the ``ours`` detector. The defaults are the settings that
    ``bench/label_noise_select.py`` chose on development rows with development noise seeds
    (``bench/results/label_noise_selection.json``); ``bench/label_noise.py`` reports them on
    other rows with other seeds."""

    repeats: int = Field(default=3, ge=1, description="re-shuffled cross-validations averaged")
    filter_by: FilterBy = Field(
        default="prune_by_noise_rate",
        description="cleanlab find_label_issues filter on those probabilities",
    )
    knn_k: int = Field(default=25, ge=1, description="neighbours in the second view")
    min_margin: float = Field(
        default=0.2, ge=0, le=1, description="P(suggested) - P(given) at least"
    )
    use_knn: bool = Field(
        default=True, description="require the k-NN view to agree (off: ablation)"
    )
