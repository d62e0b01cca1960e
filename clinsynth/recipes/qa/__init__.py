"""Recipe ``qa``: hard clinical extractive QA."""

from clinsynth.recipes.qa.recipe import ClinicalSummary, QADraft, QAOptions, QARecipe

__all__ = ["ClinicalSummary", "QADraft", "QAOptions", "QARecipe"]
