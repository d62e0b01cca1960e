"""Recipe ``trials``: retrieval-reasoning synthetic clinical trials with outcome labels."""

from clinsynth.recipes.trials.recipe import TrialReasons, TrialsOptions, TrialsRecipe

__all__ = ["TrialReasons", "TrialsOptions", "TrialsRecipe"]
