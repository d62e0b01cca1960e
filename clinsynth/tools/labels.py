"""Label correction by confident learning, with an audit trail for every item.

A classifier is fitted on the labelled texts; cross-validation gives each item class
probabilities from a model that never saw it; a detector then decides which given labels are
likely wrong. Three detectors share one backbone so they can be compared fairly:

- ``argmax``: flag every item whose most probable class is not its label and relabel it to
  that class (the label-correction step of arXiv 2403.19511);
- ``cleanlab``: ``cleanlab.filter.find_label_issues`` with its defaults (per-class
  thresholds from the confident joint, issues ranked and pruned by the estimated noise rate);
- ``ours``: confident learning made steadier and stricter — out-of-fold probabilities averaged
  over several re-shuffled cross-validations, cleanlab's stricter ``both`` filter, a minimum
  margin between the suggested and the given class, and a second view (a k-nearest-neighbour
  vote in the same embedding space) that must also reject the given label (see
  :func:`ours_detect`). Precision matters most here: every clean item wrongly flagged is
  relabelled or dropped, and on skewed label sets those errors pile up in the rare classes.
  The benchmark ``bench/label_noise.py`` measures all three.

Policies: ``flag`` keeps every item and marks suspects, ``relabel`` moves suspects to the
suggested class, ``drop`` removes them (the decision stays in the list, with ``new_label``
None, so nothing disappears silently). Suspects can be sent to an LLM for adjudication.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from clinsynth.schemas import LabelChange

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from clinsynth.llm import StructuredLLM

Policy = Literal["relabel", "drop", "flag"]
Method = Literal["ours", "cleanlab", "argmax"]
Action = Literal["keep", "flag", "relabel", "drop"]

EMBEDDING_BACKBONES = ("minilm", "hashing")
"""Backbones used frozen (embeddings + logistic regression); any other name is fine-tuned."""
DEFAULT_BACKBONE = "minilm"


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


class OursSettings(BaseModel):
    """Knobs of the ``ours`` detector. Chosen on development noise seeds (991-993), never on
    the benchmark's reported seeds (101-103)."""

    repeats: int = Field(default=3, ge=1, description="re-shuffled cross-validations averaged")
    knn_k: int = Field(default=10, ge=1, description="neighbours in the second view")
    min_margin: float = Field(
        default=0.2, ge=0, le=1, description="P(suggested) - P(given) at least"
    )
    use_knn: bool = Field(default=True, description="require the k-NN view (off: ablation)")


# --- probabilities --------------------------------------------------------------------------


def _splits(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    present = counts[counts > 0]
    if present.min() >= folds:
        splitter: Any = StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int, seed: int
) -> np.ndarray:
    """Logistic-regression probabilities over all ``n_classes`` columns."""
    from sklearn.linear_model import LogisticRegression

    out = np.zeros((len(x_test), n_classes))
    classes = np.unique(y_train)
    if len(classes) == 1:
        out[:, classes[0]] = 1.0
        return out
    model = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    model.fit(x_train, y_train)
    out[:, model.classes_] = model.predict_proba(x_test)
    return out


def oof_proba(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
) -> np.ndarray:
    """Out-of-fold logistic-regression probabilities on features ``x``, averaged over
    ``repeats`` re-shuffled ``folds``-fold splits (each row from models that never saw it)."""
    x, y = np.asarray(x), np.asarray(y)
    total = np.zeros((len(y), n_classes))
    for r in range(repeats):
        for train_idx, test_idx in _splits(y, folds, seed + 1000 * r):
            total[test_idx] += _fit_predict(
                x[train_idx], y[train_idx], x[test_idx], n_classes, seed
            )
    return total / repeats


def knn_oof_proba(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, k: int = 10, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-fold class shares among the ``k`` nearest (cosine) training neighbours, smoothed
    by one pseudo-count spread over the classes."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
    out = np.zeros((len(y), n_classes))
    for train_idx, test_idx in _splits(y, folds, seed):
        sims = x[test_idx] @ x[train_idx].T
        kk = min(k, len(train_idx))
        nearest = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        votes = np.zeros((len(test_idx), n_classes))
        for row, cols in enumerate(nearest):
            np.add.at(votes[row], y[train_idx][cols], 1.0)
        out[test_idx] = (votes + 1.0 / n_classes) / (kk + 1.0)
    return out


# --- detectors ------------------------------------------------------------------------------


class Detection(BaseModel):
    """A detector's output over all items."""

    model_config = {"arbitrary_types_allowed": True}

    flagged: np.ndarray
    suggested: np.ndarray
    proba: np.ndarray
    reasons: list[str]


def _argmax_detect(y: np.ndarray, proba: np.ndarray) -> Detection:
    pred = proba.argmax(axis=1)
    flagged = pred != y
    reasons = ["most probable class differs from the label" if f else "" for f in flagged]
    return Detection(flagged=flagged, suggested=pred, proba=proba, reasons=reasons)


def _cleanlab_detect(y: np.ndarray, proba: np.ndarray, **kwargs: Any) -> np.ndarray:
    from cleanlab.filter import find_label_issues

    if len(np.unique(y)) < 2:
        return np.zeros(len(y), dtype=bool)
    # n_jobs=1: cleanlab's default multiprocessing only changes speed, and costs more than it
    # saves on small inputs.
    issues = find_label_issues(labels=y, pred_probs=proba, n_jobs=1, **kwargs)
    return np.asarray(issues, dtype=bool)


def _cleanlab_default(y: np.ndarray, proba: np.ndarray) -> Detection:
    flagged = _cleanlab_detect(y, proba)
    reasons = ["confident learning (cleanlab defaults)" if f else "" for f in flagged]
    return Detection(flagged=flagged, suggested=proba.argmax(axis=1), proba=proba, reasons=reasons)


def ours_detect(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    seed: int = 0,
    settings: OursSettings | None = None,
) -> Detection:
    """The ``ours`` detector on features ``x``: an item is flagged when

    1. confident learning flags it (cleanlab, ``filter_by="both"``: off-diagonal of the
       confident joint *and* among the lowest-ranked of its class by the estimated noise
       rate) on out-of-fold probabilities averaged over ``repeats`` re-shuffled
       cross-validations (a steadier estimate than one split);
    2. the suggested class beats the given one by at least ``min_margin``;
    3. a second view of the same features, an out-of-fold ``knn_k``-nearest-neighbour vote,
       does not pick the given label either.
    """
    s = settings or OursSettings()
    proba = oof_proba(x, y, n_classes, folds=folds, seed=seed, repeats=s.repeats)
    pred = proba.argmax(axis=1)
    rows = np.arange(len(y))
    margin = proba[rows, pred] - proba[rows, y]
    confident = _cleanlab_detect(y, proba, filter_by="both")
    knn_disagrees = np.ones(len(y), dtype=bool)
    if s.use_knn:
        knn = knn_oof_proba(x, y, n_classes, k=s.knn_k, folds=folds, seed=seed)
        knn_disagrees = knn.argmax(axis=1) != y
    flagged = confident & knn_disagrees & (margin >= s.min_margin)
    reasons = [
        (
            f"confident learning on averaged out-of-fold probabilities; margin "
            f"{margin[i]:.2f} ≥ {s.min_margin}"
            + (f"; the {s.knn_k}-NN view also rejects the label" if s.use_knn else "")
        )
        if flagged[i]
        else ""
        for i in rows
    ]
    return Detection(flagged=flagged, suggested=pred, proba=proba, reasons=reasons)


def detect(
    method: Method,
    y: np.ndarray,
    *,
    proba: np.ndarray | None = None,
    features: np.ndarray | None = None,
    n_classes: int | None = None,
    folds: int = 5,
    seed: int = 0,
    settings: OursSettings | None = None,
) -> Detection:
    """Run one detector. ``argmax`` and ``cleanlab`` need out-of-fold ``proba`` (computed from
    ``features`` when not given); ``ours`` needs ``features`` and falls back to ``proba``
    alone (confident learning with the margin rule) when a fine-tuned backbone gave no
    features."""
    y = np.asarray(y, dtype=int)
    k = n_classes or (proba.shape[1] if proba is not None else int(y.max()) + 1)
    if method == "ours":
        if features is not None:
            return ours_detect(features, y, k, folds=folds, seed=seed, settings=settings)
        assert proba is not None, "ours needs features or probabilities"
        s = settings or OursSettings()
        pred = proba.argmax(axis=1)
        rows = np.arange(len(y))
        margin = proba[rows, pred] - proba[rows, y]
        flagged = _cleanlab_detect(y, proba, filter_by="both") & (margin >= s.min_margin)
        reasons = [
            f"confident learning; margin {m:.2f}" if f else ""
            for f, m in zip(flagged, margin, strict=True)
        ]
        return Detection(flagged=flagged, suggested=pred, proba=proba, reasons=reasons)
    if proba is None:
        assert features is not None, f"{method} needs features or probabilities"
        proba = oof_proba(features, y, k, folds=folds, seed=seed)
    if method == "argmax":
        return _argmax_detect(y, proba)
    return _cleanlab_default(y, proba)


# --- features from a backbone ---------------------------------------------------------------


def embed_texts(texts: Sequence[str], backbone: str) -> np.ndarray:
    """Frozen sentence embeddings for ``texts`` from an embedding backbone (minilm, hashing)."""
    from clinsynth.memory.embeddings import make_embedder

    if backbone not in EMBEDDING_BACKBONES:
        raise LabelError(f"{backbone!r} is not an embedding backbone ({EMBEDDING_BACKBONES})")
    kwargs: dict[str, Any] = {"dim": 1024} if backbone == "hashing" else {}
    return make_embedder(backbone, **kwargs).embed(list(texts))


def finetuned_oof_proba(
    texts: Sequence[str], y: np.ndarray, classes: list[str], backbone: str, folds: int, seed: int
) -> np.ndarray:
    """Out-of-fold probabilities from fine-tuning ``backbone`` (BioBERT name or a local BERT
    directory; offline fallback per the training tool) in each fold."""
    from clinsynth.tools.finetune.classification import ClassificationConfig, cross_val_proba

    cfg = ClassificationConfig(backbone=backbone, seed=seed, labels=list(classes))
    return cross_val_proba(list(texts), [classes[i] for i in y], cfg, folds=folds)


# --- the stable entry point -----------------------------------------------------------------


def _encode_labels(labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in labels], dtype=int), classes


def decisions_from_detection(
    detection: Detection,
    y: np.ndarray,
    classes: list[str],
    *,
    policy: Policy,
    method: str,
    backbone: str,
) -> list[LabelDecision]:
    """Apply ``policy`` to a detection: one :class:`LabelDecision` per item."""
    out: list[LabelDecision] = []
    for i, given in enumerate(y.tolist()):
        row = detection.proba[i]
        suggested = int(detection.suggested[i])
        flagged = bool(detection.flagged[i])
        old = classes[given]
        action: Action = "keep"
        new: str | None = old
        if flagged:
            action = policy
            new = {"flag": old, "relabel": classes[suggested], "drop": None}[policy]
        out.append(
            LabelDecision(
                index=i,
                old_label=old,
                new_label=new,
                suggested_label=classes[suggested],
                flagged=flagged,
                action=action,
                probabilities={c: round(float(p), 6) for c, p in zip(classes, row, strict=True)},
                self_confidence=float(row[given]),
                margin=float(row[suggested] - row[given]),
                method=method,
                backbone=backbone,
                reason=detection.reasons[i] or "label consistent with the classifier",
            )
        )
    return out


def correct_labels(
    texts: list[str],
    labels: list[str],
    *,
    policy: Literal["relabel", "drop", "flag"] = "flag",
    method: Literal["ours", "cleanlab", "argmax"] = "ours",
    backbone: str | None = None,
    folds: int = 5,
    seed: int = 0,
) -> list[LabelDecision]:
    """Find likely wrong labels among ``texts`` and apply ``policy``; one decision per item,
    in input order (dropped items stay in the list with ``new_label`` None).

    ``backbone``: ``"minilm"`` (default: frozen all-MiniLM-L6-v2 sentence embeddings + a
    logistic-regression head, CPU-friendly), ``"hashing"`` (word-hashing features, instant,
    for tests), or a BERT name / local directory to fine-tune in every fold with the training
    tool (e.g. ``dmis-lab/biobert-base-cased-v1.2``; slow on CPU).
    """
    if len(texts) != len(labels):
        raise LabelError(f"{len(texts)} texts but {len(labels)} labels")
    labels = [str(v) for v in labels]
    y, classes = _encode_labels(labels)
    if len(classes) < 2:
        raise LabelError(f"need at least two classes, got {classes}")
    if folds < 2 or folds > len(texts):
        raise LabelError(f"folds must be between 2 and the number of items ({len(texts)})")
    name = backbone or DEFAULT_BACKBONE
    if name in EMBEDDING_BACKBONES:
        features: np.ndarray | None = embed_texts(texts, name)
        proba = None
    else:
        features = None
        proba = finetuned_oof_proba(texts, y, classes, name, folds, seed)
    detection = detect(
        method, y, proba=proba, features=features, n_classes=len(classes), folds=folds, seed=seed
    )
    return decisions_from_detection(
        detection, y, classes, policy=policy, method=method, backbone=name
    )


# --- LLM adjudication -----------------------------------------------------------------------

ADJUDICATION_PROMPT_VERSION = "adjudicate-v1"

ADJUDICATION_SYSTEM = (
    "You check the labels of a clinical text-classification data set. A classifier disagrees "
    "with the label given to the text below. Read the text, weigh both candidates and any "
    "other listed label, and answer with the single label that fits best, spelled exactly as "
    "listed. Answer 'uncertain' when the text does not allow a choice."
)

ADJUDICATION_USER = (
    "Labels:\n{labels}\n\n<text>\n{text}\n</text>\n\n"
    "Given label: {given}\nClassifier's suggestion: {suggested} (probability {p:.2f})\n"
    "Which label is correct?"
)


def adjudication_messages(
    text: str,
    decision: LabelDecision,
    label_descriptions: dict[str, str] | None = None,
) -> list[BaseMessage]:
    """Messages asking an LLM to settle one flagged decision."""
    from langchain_core.messages import HumanMessage, SystemMessage

    descriptions = label_descriptions or {}
    listing = "\n".join(
        f"- {lab}" + (f": {descriptions[lab]}" if lab in descriptions else "")
        for lab in decision.probabilities
    )
    user = ADJUDICATION_USER.format(
        labels=listing,
        text=text,
        given=decision.old_label,
        suggested=decision.suggested_label,
        p=decision.probabilities.get(decision.suggested_label, 0.0),
    )
    return [SystemMessage(ADJUDICATION_SYSTEM), HumanMessage(user)]


def _apply_adjudication(decision: LabelDecision, verdict: Adjudication) -> LabelDecision:
    """The LLM's label wins when it names a known label; 'uncertain' keeps the policy's."""
    label = verdict.label.strip()
    update: dict[str, Any] = {"adjudication": verdict}
    if label in decision.probabilities:
        kept = label == decision.old_label
        if decision.action == "drop" and not kept:
            update["reason"] = f"{decision.reason}; LLM adjudication: {label}"
        elif kept:
            update.update(
                new_label=decision.old_label,
                action="keep",
                reason=f"{decision.reason}; LLM adjudication kept the given label",
            )
        else:
            update.update(
                new_label=label,
                action="relabel",
                reason=f"{decision.reason}; LLM adjudication chose {label}",
            )
    else:
        update["reason"] = f"{decision.reason}; LLM adjudication uncertain"
    return decision.model_copy(update=update)


async def adjudicate(
    texts: Sequence[str],
    decisions: Sequence[LabelDecision],
    llm: StructuredLLM | BaseChatModel,
    *,
    label_descriptions: dict[str, str] | None = None,
    concurrency: int = 4,
) -> list[LabelDecision]:
    """Ask ``llm`` about every flagged decision; the answers are recorded on the decisions.

    A known label from the LLM overrides the policy (keep the given label, or relabel; a
    dropped item stays dropped); 'uncertain', an unparsable reply or a request the endpoint
    refuses leaves the decision as it was, with the reply (or refusal) attached. A plain chat
    model is wrapped in a :class:`StructuredLLM`.
    """
    from clinsynth.llm import LLMRequestError, StructuredLLM

    structured = llm if isinstance(llm, StructuredLLM) else StructuredLLM(llm, name="adjudicator")
    gate = asyncio.Semaphore(concurrency)

    async def one(decision: LabelDecision) -> LabelDecision:
        if not decision.flagged:
            return decision
        messages = adjudication_messages(texts[decision.index], decision, label_descriptions)
        try:
            async with gate:
                result = await structured.ainvoke(messages, Adjudication, temperature=0.0)
        except LLMRequestError as exc:  # this text only; the others are still adjudicated
            verdict = Adjudication(rationale=f"no reply: {exc}", label="uncertain")
            return _apply_adjudication(decision, verdict)
        if result.parsed is None:
            verdict = Adjudication(rationale=f"no usable reply: {result.error}", label="uncertain")
        else:
            verdict = result.parsed
        return _apply_adjudication(decision, verdict)

    return list(await asyncio.gather(*(one(d) for d in decisions)))


__all__ = [
    "ADJUDICATION_PROMPT_VERSION",
    "Adjudication",
    "Detection",
    "LabelDecision",
    "LabelError",
    "Method",
    "OursSettings",
    "Policy",
    "adjudicate",
    "adjudication_messages",
    "correct_labels",
    "decisions_from_detection",
    "detect",
    "embed_texts",
    "finetuned_oof_proba",
    "knn_oof_proba",
    "oof_proba",
    "ours_detect",
]
