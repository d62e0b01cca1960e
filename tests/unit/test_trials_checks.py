"""The critic checks of the ``trials`` recipe: each passes a good trial and fails a bad one."""

from __future__ import annotations

from clinsynth.evaluators.memorisation import copied_ids_check, memorisation_check
from clinsynth.evaluators.realism import realism_check
from clinsynth.evaluators.similarity import near_duplicate_check
from clinsynth.evaluators.trial_form import completeness_check, intervention_check

GOOD = {
    "title": "Deltamab for recurrent migraine",
    "phase": "phase 2",
    "conditions": ["migraine"],
    "interventions": ["Deltamab 70 mg", "placebo"],
    "eligibility_criteria": "Inclusion Criteria:\n- adults\nExclusion Criteria:\n- pregnancy",
    "outcome_measures": ["monthly migraine days"],
    "summary": "A randomised trial of deltamab.",
}
REFERENCE = (
    "Inclusion Criteria: adults aged eighteen to sixty five years with at least four migraine "
    "days per month for three months and stable preventive medication for eight weeks "
    "Exclusion Criteria: pregnancy or lactation uncontrolled hypertension"
)


def test_completeness_passes_full_record() -> None:
    check = completeness_check(GOOD)
    assert check.passed and check.score == 1.0 and check.name == "schema_completeness"


def test_completeness_fails_empty_fields_and_missing_blocks() -> None:
    bad = dict(GOOD, summary=" ", outcome_measures=[], eligibility_criteria="adults only")
    check = completeness_check(bad)
    assert not check.passed and check.on_fail == "revise"
    assert check.details["missing"] == ["outcome_measures", "summary"]
    assert "no inclusion block" in check.reason and "no exclusion block" in check.reason
    assert check.score == (9 - 4) / 9


def test_intervention_named_pass_and_fail() -> None:
    assert intervention_check("deltamab", GOOD["interventions"]).passed
    assert intervention_check("gemcitabine hydrochloride", ["Gemcitabine Hydrochloride IV"]).passed
    check = intervention_check("cisplatin", GOOD["interventions"])
    assert not check.passed and check.score == 0.0
    assert "must test 'cisplatin'" in check.reason


def test_memorisation_passes_own_words() -> None:
    text = (
        "Inclusion Criteria: grown-ups with frequent headaches on a steady preventive "
        "regimen Exclusion Criteria: expecting mothers"
    )
    check = memorisation_check(text, {"NCT1": REFERENCE}, max_run=12, n=8)
    assert check.passed and check.details["longest_run"] < 12


def test_memorisation_fails_copied_criteria_block() -> None:
    text = "New trial. " + REFERENCE[:200] + " plus one more line of our own."
    check = memorisation_check(text, {"NCT1": "unrelated", "NCT2": REFERENCE}, max_run=12, n=8)
    assert not check.passed and check.on_fail == "revise"
    assert check.details["longest_run_ref"] == "NCT2" and check.details["longest_run"] >= 12
    assert "copied from NCT2" in check.reason


def test_memorisation_fails_on_ngram_share_alone() -> None:
    # short copied runs (below max_run) that still make up most of the text's 3-grams
    pieces = REFERENCE.split()
    text = " ".join(" ".join(pieces[i : i + 5]) + " zz" for i in range(0, 30, 5))
    check = memorisation_check(text, {"NCT2": REFERENCE}, max_run=50, max_ngram_overlap=0.3, n=3)
    assert not check.passed and check.score > 0.3 and check.details["longest_run"] < 50


def test_copied_ids_pass_and_fail() -> None:
    assert copied_ids_check("A trial of deltamab in adults.").passed
    check = copied_ids_check("Extension of nct01234567 in adults.", {"NCT01234567"})
    assert not check.passed and check.details["copied"] == ["NCT01234567"]
    assert "copies real trial ids" in check.reason
    invented = copied_ids_check("See NCT76543210.", {"NCT01234567"})
    assert not invented.passed and invented.details["copied"] == []


def test_realism_band() -> None:
    assert realism_check([0.7, 0.6, 0.5]).passed  # distance 0.4
    too_close = realism_check([0.999, 0.995], min_distance=0.02)
    assert not too_close.passed and "near copy" in too_close.reason
    too_far = realism_check([0.1, 0.2], max_distance=0.6)
    assert not too_far.passed and "unlike the real trials" in too_far.reason
    empty = realism_check([])
    assert empty.passed and "no real records" in empty.reason


def test_near_duplicate_reused_from_core() -> None:
    assert near_duplicate_check(("trials-0-000001", 0.5), threshold=0.92).passed
    assert not near_duplicate_check(("trials-0-000001", 0.97), threshold=0.92).passed
