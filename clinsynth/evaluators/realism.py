"""Realism: a generated record should sit near real records of its kind, but not on them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clinsynth.schemas import CheckResult


def realism_check(
    similarities: Sequence[float], *, min_distance: float = 0.02, max_distance: float = 0.6
) -> CheckResult:
    """Pass when the embedding distance (1 − mean cosine to the nearest real records of the
    same kind, given as ``similarities``) lies in ``[min_distance, max_distance]``: below is a
    near copy, above is unlike any real record. With no references there is nothing to
    compare with and the check passes, saying so."""
    if not similarities:
        return CheckResult(
            name="realism",
            score=0.0,
            passed=True,
            reason="no real records to compare with",
            threshold=max_distance,
            on_fail="revise",
        )
    distance = float(1.0 - np.mean(np.asarray(similarities, dtype=float)))
    if distance < min_distance:
        passed, why = False, f"below {min_distance:.2f}: it is a near copy of real trials"
    elif distance > max_distance:
        passed, why = False, f"above {max_distance:.2f}: it reads unlike the real trials"
    else:
        passed, why = True, f"within [{min_distance:.2f}, {max_distance:.2f}]"
    return CheckResult(
        name="realism",
        score=distance,
        passed=passed,
        reason=(
            f"embedding distance {distance:.3f} to the {len(similarities)} nearest real "
            f"trials is {why}"
        ),
        threshold=max_distance,
        on_fail="revise",
        details={
            "min_distance": min_distance,
            "max_distance": max_distance,
            "n": len(similarities),
        },
    )
