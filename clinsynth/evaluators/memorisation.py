"""Memorisation: does a generated text copy its examples or the nearest real records?

Measures: the longest run of consecutive tokens shared with any reference, the share of the
text's word n-grams found in a reference, and registry ids (NCT numbers) copied verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from clinsynth.evaluators.overlap import longest_common_token_run, ngram_overlap
from clinsynth.schemas import CheckResult

NCT_ID = re.compile(r"\bNCT\d{8}\b", re.IGNORECASE)


def memorisation_check(
    text: str,
    references: Mapping[str, str],
    *,
    max_run: int = 25,
    max_ngram_overlap: float = 0.3,
    n: int = 8,
) -> CheckResult:
    """Pass when, against every reference (id → text), the longest shared token run is below
    ``max_run`` and the share of ``text``'s word ``n``-grams found in it is at most
    ``max_ngram_overlap``. Score: the worst n-gram share; details name the worst reference."""
    worst_run, run_ref = 0, None
    worst_share, share_ref = 0.0, None
    for ref_id, ref_text in references.items():
        run = longest_common_token_run(text, ref_text)
        if run > worst_run:
            worst_run, run_ref = run, ref_id
        share = ngram_overlap(text, ref_text, n)
        if share > worst_share:
            worst_share, share_ref = share, ref_id
    problems = []
    if worst_run >= max_run:
        problems.append(f"{worst_run} consecutive tokens copied from {run_ref} (limit {max_run})")
    if worst_share > max_ngram_overlap:
        problems.append(
            f"{worst_share:.2f} of its {n}-grams occur in {share_ref} "
            f"(limit {max_ngram_overlap:.2f})"
        )
    passed = not problems
    reason = (
        f"longest copied run {worst_run} tokens, {n}-gram overlap {worst_share:.2f} "
        f"against {len(references)} references"
        if passed
        else "copies a reference: " + "; ".join(problems) + "; write it in your own words"
    )
    return CheckResult(
        name="memorisation",
        score=worst_share,
        passed=passed,
        reason=reason,
        threshold=max_ngram_overlap,
        on_fail="revise",
        details={
            "longest_run": worst_run,
            "longest_run_ref": run_ref,
            "ngram_overlap": worst_share,
            "ngram_overlap_ref": share_ref,
            "n": n,
            "max_run": max_run,
        },
    )


def copied_ids_check(text: str, known_ids: set[str] | None = None) -> CheckResult:
    """Fail when ``text`` contains a registry id (NCT number): a synthetic trial must not carry
    a real trial's id. ``known_ids`` only sharpens the reason (copied vs invented)."""
    found = sorted({m.group(0).upper() for m in NCT_ID.finditer(text)})
    copied = [i for i in found if known_ids and i in known_ids]
    passed = not found
    if passed:
        reason = "no registry ids in the text"
    elif copied:
        reason = f"copies real trial ids {', '.join(copied)}; remove every NCT number"
    else:
        reason = f"contains registry ids {', '.join(found)}; remove every NCT number"
    return CheckResult(
        name="copied_ids",
        score=float(len(found)),
        passed=passed,
        reason=reason,
        threshold=0.0,
        on_fail="revise",
        details={"ids": found, "copied": copied},
    )
