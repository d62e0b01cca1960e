"""Label correction by confident learning, with an audit trail for every item.

A classifier is fitted on the labelled texts; cross-validation gives each item class
probabilities from a model that never saw it; a detector then decides which given labels are
likely wrong. Three detectors share one backbone so they can be compared fairly:

- ``argmax``: flag every item whose most probable class is not its label and relabel it to
  that class (the label-correction step of arXiv 2403.19511);
- ``cleanlab``: ``cleanlab.filter.find_label_issues`` with its defaults (per-class
  thresholds from the confident joint, issues ranked and pruned by the estimated noise rate);
- ``ours``: confident learning made steadier and stricter — out-of-fold probabilities averaged
  over several re-shuffled cross-validations, a cleanlab filter, a minimum margin between the
  suggested and the given class, and a second view (cleanlab's filter on k-nearest-neighbour
  class shares in the same embedding space) that must also reject the given label (see
  :func:`ours_detect`; its settings are chosen on development data by
  ``bench/label_noise_select.py``). Precision matters most here: every clean item wrongly flagged is
  relabelled or dropped, and on skewed label sets those errors pile up in the rare classes.
  The benchmark ``bench/label_noise.py`` measures all three.

Policies: ``flag`` keeps every item and marks suspects, ``relabel`` moves suspects to the
suggested class, ``drop`` removes them (the decision stays in the list, with ``new_label``
None, so nothing disappears silently). Suspects can be sent to an LLM for adjudication.
"""

from clinsynth.tools.labels.adjudication import (
    ADJUDICATION_PROMPT_VERSION,
    adjudicate,
    adjudication_messages,
)
from clinsynth.tools.labels.correction import correct_labels, decisions_from_detection
from clinsynth.tools.labels.detection import (
    Detection,
    detect,
    issue_rank,
    knn_proba,
    knn_view,
    margin_rule,
    ours_detect,
    ours_flags,
)
from clinsynth.tools.labels.models import (
    Adjudication,
    LabelDecision,
    LabelError,
    Method,
    OursSettings,
    Policy,
)
from clinsynth.tools.labels.probabilities import (
    embed_texts,
    finetuned_oof_proba,
    oof_proba,
)

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
    "issue_rank",
    "knn_proba",
    "knn_view",
    "margin_rule",
    "oof_proba",
    "ours_detect",
    "ours_flags",
]
