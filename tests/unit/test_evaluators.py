"""Hand-made pass/fail cases for the pure evaluators, including each threshold's boundary."""

from __future__ import annotations

import numpy as np
import pytest

from clinsynth.evaluators import (
    UNANSWERABLE,
    PhiHit,
    answer_validity_check,
    content_words,
    cosine,
    find_phi,
    is_unanswerable,
    lexical_overlap,
    locate_answer,
    longest_common_token_run,
    max_cosine,
    near_duplicate_check,
    ngram_overlap,
    normalize,
    overlap_check,
    privacy_check,
    question_form_check,
    tokens,
)
from clinsynth.schemas import CheckResult, CriticReport

# --- text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Hello   World  ", "hello world"),
        ('"Quoted answer."', "quoted answer"),
        ("“Curly” quotes…", "curly” quotes"),
        ("Ｆｕｌｌ\u00a0width", "full width"),
        ("tabs\tand\nnewlines", "tabs and newlines"),
        ("n/a", "n/a"),
        ("...", ""),
        ("", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_tokens_split_on_punctuation_and_underscores() -> None:
    assert tokens("BP 120/80, HbA1c 7.2%; snake_case") == [
        "bp",
        "120",
        "80",
        "hba1c",
        "7",
        "2",
        "snake",
        "case",
    ]


def test_content_words_drop_function_and_question_words_keep_numbers() -> None:
    question = "What does the patient's note say about the 5 mg dose of metoprolol?"
    assert content_words(question, stem=False) == ["say", "5", "mg", "dose", "metoprolol"]


def test_content_words_are_stemmed_by_default() -> None:
    assert content_words("Diuretics were increased; diuresis increasing") == [
        "diuret",
        "increas",
        "diuresi",
        "increas",
    ]


def test_patient_is_scaffolding_not_content() -> None:
    assert content_words("Which patients were treated?") == ["treat"]


def test_content_words_empty() -> None:
    assert content_words("What is the?") == []


# --- overlap --------------------------------------------------------------------------------

DOC = "Metoprolol, a beta-blocker, was started for rate control of atrial fibrillation."


def test_lexical_overlap_full_and_none() -> None:
    assert lexical_overlap("Which beta blocker was started for rate control?", DOC) == 1.0
    assert lexical_overlap("Which anticoagulant prevents stroke?", DOC) == 0.0


def test_lexical_overlap_counts_distinct_stems() -> None:
    # "controlled" and "control" share one stem; "ventricular" is new: 1 of 2.
    assert lexical_overlap("Control of ventricular controlled?", DOC) == 0.5


def test_lexical_overlap_question_without_content_is_zero() -> None:
    assert lexical_overlap("What is it?", DOC) == 0.0


def test_overlap_check_passes_at_the_boundary() -> None:
    # stems: rate (reused), ventricular (new) -> exactly 0.5
    result = overlap_check("How was the ventricular rate?", DOC)
    assert result.score == 0.5
    assert result.passed
    assert result.threshold == 0.5
    assert result.details["reused_stems"] == ["rate"]
    assert result.details["reused_count"] == 1


def test_overlap_check_fails_above_the_boundary() -> None:
    # stems: ventricular (new), rate, control (reused) -> 2/3
    result = overlap_check("How was the ventricular rate controlled?", DOC)
    assert result.score == pytest.approx(2 / 3)
    assert not result.passed
    assert result.on_fail == "revise"
    assert result.name == "lexical_overlap"
    assert "rate, controlled" in result.reason
    assert result.details == {
        "reused_stems": ["rate", "control"],
        "reused_count": 2,
        "content_count": 3,
    }


def test_overlap_check_custom_threshold() -> None:
    question = "How was the ventricular rate controlled?"
    assert overlap_check(question, DOC, max_overlap=0.7).passed
    assert not overlap_check(question, DOC, max_overlap=0.6).passed


def test_overlap_check_no_reuse_says_none() -> None:
    result = overlap_check("Which anticoagulant prevents stroke?", DOC)
    assert result.passed
    assert result.score == 0.0
    assert result.reason.endswith("none")


def test_longest_common_token_run() -> None:
    a = "The patient was started on metoprolol 25 mg twice daily."
    b = "Plan: STARTED ON Metoprolol 25-mg twice daily, recheck in a week."
    assert longest_common_token_run(a, b) == 7  # started on metoprolol 25 mg twice daily
    assert longest_common_token_run(a, "nothing shared here") == 0
    assert longest_common_token_run("", b) == 0


def test_longest_common_token_run_repeated_tokens() -> None:
    assert longest_common_token_run("a a a b", "a a b a a a") == 3


def test_ngram_overlap() -> None:
    a = "one two three four five six"  # 5-grams: (1..5), (2..6)
    assert ngram_overlap(a, "zero one two three four five seven") == 0.5
    assert ngram_overlap(a, a) == 1.0
    assert ngram_overlap(a, "six five four three two one") == 0.0
    assert ngram_overlap("too short", a) == 0.0
    assert ngram_overlap("One, two!", "one two", n=2) == 1.0


def test_ngram_overlap_rejects_bad_n() -> None:
    with pytest.raises(ValueError, match="n must be"):
        ngram_overlap("a b", "a b", n=0)


# --- answer ---------------------------------------------------------------------------------

MESSY = (
    "Assessment and Plan:\n  1. Atrial  fibrillation — start \u201cApixaban\u201d\n"
    "     5 mg twice daily.\n  2. Ｈｂ trend: stable.  Patient\u2019s wife at bedside."
)


def _span(answer: str, context: str = MESSY) -> str | None:
    span = locate_answer(answer, context)
    return None if span is None else context[span[0] : span[1]]


def test_locate_answer_exact() -> None:
    span = locate_answer("5 mg twice daily", MESSY)
    assert span is not None
    start, end = span
    assert MESSY[start:end] == "5 mg twice daily"
    assert start == MESSY.index("5 mg")


def test_locate_answer_exact_strips_outer_whitespace() -> None:
    assert _span("  twice daily \n") == "twice daily"


def test_locate_answer_tolerates_case_and_whitespace() -> None:
    assert _span("atrial fibrillation") == "Atrial  fibrillation"
    assert _span("apixaban\u201d 5 MG twice") == "Apixaban\u201d\n     5 mg twice"


def test_locate_answer_tolerates_quote_and_dash_characters() -> None:
    assert _span('fibrillation - start "apixaban"') == "fibrillation — start \u201cApixaban\u201d"
    assert _span("patient's wife") == "Patient\u2019s wife"


def test_locate_answer_tolerates_width_variants() -> None:
    assert _span("hb trend") == "Ｈｂ trend"


def test_locate_answer_strips_wrapping_quotes_and_period() -> None:
    assert _span('"5 mg twice daily."') == "5 mg twice daily"
    assert _span("'stable'") == "stable"
    assert _span('"Hb trend".') == "Ｈｂ trend"


def test_locate_answer_offsets_after_multi_char_folds() -> None:
    context = "ﬁbrosis noted; ﬁndings stable"  # ligature "ﬁ" folds to two characters
    assert _span("findings stable", context) == "ﬁndings stable"
    assert _span("fibrosis", context) == "ﬁbrosis"


def test_locate_answer_not_found() -> None:
    assert locate_answer("warfarin", MESSY) is None
    assert locate_answer("start apixaban 10 mg", MESSY) is None
    assert locate_answer("", MESSY) is None
    assert locate_answer('""', MESSY) is None


@pytest.mark.parametrize(
    "answer",
    [
        UNANSWERABLE,
        "Unanswerable.",
        '"unanswerable"',
        "",
        "   ",
        "N/A",
        "n/a.",
        "Not answerable",
        "Cannot be answered.",
        "can\u2019t be answered",
        "NOT MENTIONED",
    ],
)
def test_is_unanswerable_accepts_spellings(answer: str) -> None:
    assert is_unanswerable(answer)


@pytest.mark.parametrize("answer", ["apixaban", "none of the above", "answerable", "no"])
def test_is_unanswerable_rejects_answers(answer: str) -> None:
    assert not is_unanswerable(answer)


def test_answer_validity_unanswerable_passes() -> None:
    result = answer_validity_check("N/A", MESSY)
    assert result.passed
    assert result.score == 1.0
    assert result.details["unanswerable"] is True


def test_answer_validity_located_passes_with_span() -> None:
    result = answer_validity_check("apixaban", MESSY)
    assert result.passed
    assert result.score == 1.0
    assert result.name == "answer_validity"
    start, end = result.details["start"], result.details["end"]
    assert MESSY[start:end] == result.details["text"] == "Apixaban"


def test_answer_validity_not_a_quote_fails_with_relabel() -> None:
    result = answer_validity_check("warfarin 5 mg", MESSY)
    assert not result.passed
    assert result.score == 0.0
    assert result.on_fail == "relabel"
    assert "not an exact quote" in result.reason


# --- privacy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "found"),
    [
        ("Call 555-123-4567 today", "phone", "555-123-4567"),
        ("Call (555) 123-4567 today", "phone", "(555) 123-4567"),
        ("Call +1 555.123.4567 today", "phone", "555.123.4567"),
        ("Call +44 20 7946 0321 today", "phone", "+44 20 7946 0321"),
        ("Call +33 6 12 34 56 78 today", "phone", "+33 6 12 34 56 78"),
        ("Mail jo.doe+x@clinic.example.org now", "email", "jo.doe+x@clinic.example.org"),
        ("SSN 123-45-6789 on file", "ssn", "123-45-6789"),
        ("Social security number: 123456789", "ssn", "123456789"),
        ("SSN 219 09 9999 on file", "ssn", "219 09 9999"),
        ("MRN: 1234567 admitted", "mrn", "1234567"),
        ("Hospital number RX4820193 confirmed", "mrn", "RX4820193"),
        ("NHS number 943 476 5919 checked", "mrn", "943 476 5919"),
        ("medical record number 00123456", "mrn", "00123456"),
        ("Medical record no. A-98765 noted", "mrn", "A-98765"),
        ("born 03/14/1962 in", "date", "03/14/1962"),
        ("seen 3/14/62 in", "date", "3/14/62"),
        ("seen 3-14-1962 in", "date", "3-14-1962"),
        ("seen 14/03/1962.", "date", "14/03/1962"),
        ("on 2021-07-09 the", "date", "2021-07-09"),
        ("born March 14, 1962 in", "date", "March 14, 1962"),
        ("born Mar. 14th 1962 in", "date", "Mar. 14th 1962"),
        ("born 14 March 1962 in", "date", "14 March 1962"),
        ("fell on 2 February at home", "date", "2 February"),
        ("seen 22.09.2024.", "date", "22.09.2024"),
        ("A 93-year-old woman from Hexham", "age", "93-year-old"),
        ("Aged 91, he lives alone", "age", "Aged 91"),
        ("Seen with Mr. Thomas Whitfield today", "name", "Mr. Thomas Whitfield"),
        ("Patient Jonathan Pereira was moved", "name", "Jonathan Pereira"),
        ("Postcode SW1A 2AA on the form", "address", "SW1A 2AA"),
        ("lives at 123 Main Street with", "address", "123 Main Street"),
        ("lives at 42 Old Mill Rd. with", "address", "42 Old Mill Rd."),
        ("lives at 9 5th Avenue with", "address", "9 5th Avenue"),
        ("see https://example.org/path?q=1.", "url", "https://example.org/path?q=1"),
        ("see www.example.org, then", "url", "www.example.org"),
        ("host 192.168.10.254.", "ip_address", "192.168.10.254"),
    ],
)
def test_find_phi_detects(text: str, kind: str, found: str) -> None:
    hits = find_phi(text)
    assert [(h.kind, h.text) for h in hits] == [(kind, found)]
    assert text[hits[0].start : hits[0].end] == found


@pytest.mark.parametrize(
    "text",
    [
        "Furosemide 1 mg/kg IV twice daily.",
        "BP 120/80, HR 72, SpO2 94% on 2 L/min.",
        "2/3 patients improved; 1/2 tablet at night.",
        "Diagnosed in 1962; follow up in 2 weeks.",
        "Creatinine 1.4 mg/dL, eGFR 48 mL/min/1.73 m2, potassium 4.1 mmol/L.",
        "Version 1.2.3 of the score; 256.1.1.1 is not an address.",
        "QTc 440 ms; INR 2.5; HbA1c 7.2% (was 8.1%).",
        "Walked 2 blocks down the road; medical record reviewed.",
        "Ejection fraction 30-35%; dose 10-20-40 mg titration.",
        "Stages 3-14-62 in the old scale.",
        "Month 13/45/2020 is not a date; 32/01/2020 neither.",
        "Admitted in March 1962 for two weeks.",
        "The patient is 89 years old; temperature 38.4 C on day 3.",
        "Crohn disease; Glasgow Coma Scale 14/15; ST elevation in leads II, III and aVF.",
        "Patients may 3 times daily; trial arms 0.5 mg/kg and 1.0 mg/kg.",
        "Resistance 0.05 cm H2O.mL-1.min-1 in C57BL/6 mice.",
    ],
)
def test_find_phi_ignores_clinical_numbers(text: str) -> None:
    assert find_phi(text) == []


def test_find_phi_orders_hits_and_drops_nested_ones() -> None:
    text = "Portal http://10.0.0.1/login, mail a@b.co, phone 555-123-4567."
    hits = find_phi(text)
    assert [h.kind for h in hits] == ["ip_address", "email", "phone"]
    assert all(isinstance(h, PhiHit) for h in hits)


def test_privacy_check_passes_clean_text() -> None:
    result = privacy_check("The patient was discharged on day 4 with furosemide 40 mg daily.")
    assert result.passed
    assert result.score == 0.0
    assert result.threshold == 0.0
    assert result.name == "privacy"


def test_privacy_check_fails_on_one_hit_and_masks_it() -> None:
    result = privacy_check("Reach the family at 555-867-5309.")
    assert not result.passed
    assert result.score == 1.0
    assert result.on_fail == "revise"
    assert "phone" in result.reason
    assert "***-***-****" in result.reason
    assert "5309" not in result.reason
    assert "5309" not in str(result.details)
    assert result.details["kinds"] == {"phone": 1}


def test_privacy_check_counts_every_hit() -> None:
    result = privacy_check("MRN: 7654321, email x@y.org, born 01/02/1950.")
    assert result.score == 3.0
    assert result.details["kinds"] == {"mrn": 1, "email": 1, "date": 1}
    assert "x@y" not in result.reason


def test_privacy_check_allowed_kinds() -> None:
    text = "See https://example.org for the guideline."
    assert not privacy_check(text).passed
    assert privacy_check(text, allowed_kinds={"url"}).passed


# --- similarity -----------------------------------------------------------------------------


def test_cosine() -> None:
    assert cosine(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(0.0)
    assert cosine(np.array([1.0, 1.0]), np.array([-1.0, -1.0])) == pytest.approx(-1.0)
    assert cosine(np.zeros(3), np.ones(3)) == 0.0


def test_cosine_size_mismatch() -> None:
    with pytest.raises(ValueError, match="differ"):
        cosine(np.ones(2), np.ones(3))


def test_max_cosine() -> None:
    matrix = np.array([[0.0, 1.0], [1.0, 0.1], [0.0, 0.0]])
    index, score = max_cosine(np.array([1.0, 0.0]), matrix) or (None, None)
    assert index == 1
    assert score == pytest.approx(1 / np.sqrt(1.01))


def test_max_cosine_empty_and_single_row() -> None:
    assert max_cosine(np.ones(3), np.empty((0, 3))) is None
    assert max_cosine(np.ones(2), np.array([2.0, 2.0])) == (0, pytest.approx(1.0))


def test_max_cosine_width_mismatch() -> None:
    with pytest.raises(ValueError, match="matrix width"):
        max_cosine(np.ones(2), np.ones((2, 3)))


def test_near_duplicate_none_passes() -> None:
    result = near_duplicate_check(None)
    assert result.passed
    assert result.score == 0.0


def test_near_duplicate_boundary() -> None:
    below = near_duplicate_check(("item-7", 0.9199))
    at = near_duplicate_check(("item-7", 0.92))
    assert below.passed
    assert not at.passed
    assert at.on_fail == "revise"
    assert "item-7" in at.reason
    assert at.details == {"nearest_id": "item-7"}
    assert at.threshold == 0.92


def test_near_duplicate_custom_threshold() -> None:
    assert not near_duplicate_check(("a", 0.85), threshold=0.8).passed
    assert near_duplicate_check(("a", 0.85), threshold=0.9).passed


# --- form -----------------------------------------------------------------------------------


def _question(words: int) -> str:
    return " ".join(["word"] * words) + "?"


def test_question_form_word_bounds() -> None:
    assert question_form_check(_question(5)).passed
    assert question_form_check(_question(60)).passed
    too_short = question_form_check(_question(4))
    too_long = question_form_check(_question(61))
    assert not too_short.passed
    assert "fewer than 5" in too_short.reason
    assert not too_long.passed
    assert "more than 60" in too_long.reason


def test_question_form_needs_question_mark() -> None:
    result = question_form_check("Which drug was started for rate control.")
    assert not result.passed
    assert result.score == 0.0
    assert result.on_fail == "revise"
    assert "does not end with '?'" in result.reason


def test_question_form_ignores_stray_punctuation_and_trailing_space() -> None:
    result = question_form_check("Which drug was started - for control ?  ")
    assert result.passed
    assert result.details["words"] == 6


def test_question_form_custom_bounds_and_both_problems() -> None:
    assert question_form_check("Why?", min_words=1, max_words=1).passed
    result = question_form_check("Why", min_words=2)
    assert "does not end with '?'" in result.reason
    assert "fewer than 2" in result.reason


# --- together -------------------------------------------------------------------------------


def test_checks_feed_the_critic_report() -> None:
    checks: list[CheckResult] = [
        question_form_check("Which drug was started for rate control?"),
        overlap_check("Which drug was started for rate control?", DOC),
        answer_validity_check("warfarin", DOC),
        privacy_check("clean text"),
    ]
    report = CriticReport.from_checks(checks)
    assert report.verdict == "revise"
    assert [r.split(":")[0] for r in report.reasons] == ["lexical_overlap", "answer_validity"]
