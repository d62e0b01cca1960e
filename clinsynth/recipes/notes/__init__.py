"""Recipe ``notes``: labelled clinical texts from few-shot gold examples + label correction."""

from clinsynth.recipes.notes.recipe import NoteDraft, NotesOptions, NotesRecipe

__all__ = ["NoteDraft", "NotesOptions", "NotesRecipe"]
