"""Recipe ``qa``: hard clinical extractive QA."""

from clinsynth.recipes.qa.reader import TrainedReader
from clinsynth.recipes.qa.recipe import ClinicalSummary, QAAnswer, QADraft, QAOptions, QARecipe

__all__ = ["ClinicalSummary", "QAAnswer", "QADraft", "QAOptions", "QARecipe", "TrainedReader"]
