"""Sample-size answers recomputed with statsmodels power functions.

A scenario names the outcome type, the effect (difference of means with its standard
deviation, or two event rates), two-sided alpha, power, allocation ratio (arm 2 : arm 1) and
expected dropout. The required total N is the per-arm sizes from ``TTestIndPower`` (continuous)
or ``NormalIndPower`` on Cohen's h (binary), each rounded up, inflated for dropout and rounded up.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field

from clinsynth.schemas import CheckResult


class PowerScenario(BaseModel):
    """The design assumptions a sample-size calculation needs."""

    outcome_type: Literal["continuous", "binary"]
    mean_difference: float | None = Field(default=None, description="continuous: difference")
    standard_deviation: float | None = Field(default=None, gt=0, description="continuous: SD")
    control_rate: float | None = Field(default=None, gt=0, lt=1, description="binary: control")
    treatment_rate: float | None = Field(default=None, gt=0, lt=1, description="binary: treated")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="two-sided significance level")
    power: float = Field(0.8, gt=0.5, lt=1)
    allocation_ratio: float = Field(1.0, gt=0, le=10, description="arm 2 size / arm 1 size")
    dropout_rate: float = Field(0.0, ge=0, lt=0.9)


class ScenarioError(ValueError):
    """A scenario whose sample size cannot be computed (missing or degenerate effect)."""


def required_sample_size(s: PowerScenario) -> int:
    """Total participants to enrol for ``s`` (both arms, after dropout inflation)."""
    from statsmodels.stats.power import NormalIndPower, TTestIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    if s.outcome_type == "continuous":
        if s.mean_difference is None or s.standard_deviation is None:
            raise ScenarioError("a continuous outcome needs mean_difference and standard_deviation")
        effect = abs(s.mean_difference) / s.standard_deviation
        analysis: TTestIndPower | NormalIndPower = TTestIndPower()
    else:
        if s.control_rate is None or s.treatment_rate is None:
            raise ScenarioError("a binary outcome needs control_rate and treatment_rate")
        effect = abs(float(proportion_effectsize(s.treatment_rate, s.control_rate)))
        analysis = NormalIndPower()
    if effect < 1e-3:
        raise ScenarioError(f"the effect size is {effect:.4f}: no sample size detects it")
    n1 = analysis.solve_power(
        effect_size=effect,
        alpha=s.alpha,
        power=s.power,
        ratio=s.allocation_ratio,
        alternative="two-sided",
    )
    n1 = float(n1)
    per_arm = math.ceil(n1) + math.ceil(n1 * s.allocation_ratio)
    return math.ceil(per_arm / (1.0 - s.dropout_rate))


def sample_size_check(claimed: int, scenario: PowerScenario, *, tolerance: float) -> CheckResult:
    """Pass when ``claimed`` is within ``tolerance`` (relative) of the recomputed N."""
    try:
        expected = required_sample_size(scenario)
    except (ScenarioError, ValueError, ArithmeticError) as exc:
        return CheckResult(
            name="sample_size_recomputed",
            score=1.0,
            passed=False,
            reason=f"the scenario cannot be computed ({exc}); give a complete, non-zero effect",
        )
    error = abs(claimed - expected) / expected
    passed = error <= tolerance
    reason = (
        f"answer {claimed} matches the recomputed N {expected} (off by {error:.1%})"
        if passed
        else f"answer {claimed} is off by {error:.0%} from the N these assumptions need "
        f"({expected}, statsmodels, tolerance {tolerance:.0%}); fix the answer"
    )
    return CheckResult(
        name="sample_size_recomputed",
        score=error,
        passed=passed,
        reason=reason,
        threshold=tolerance,
        details={"recomputed": expected, "claimed": claimed},
    )
