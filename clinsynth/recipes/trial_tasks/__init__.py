"""Recipe ``trial-tasks``: TrialPanorama-style trial tasks with a verified answer key."""

from clinsynth.recipes.trial_tasks.recipe import TrialTasksOptions, TrialTasksRecipe

__all__ = ["TrialTasksOptions", "TrialTasksRecipe"]
