"""Exceptions and warnings of the fine-tuning tool."""

from __future__ import annotations


class FinetuneError(Exception):
    """Base class of the fine-tuning tool's errors."""


class BackboneUnavailableError(FinetuneError):
    """The requested backbone cannot be loaded and falling back is not allowed."""


class DatasetError(FinetuneError, ValueError):
    """Training or evaluation data is missing, empty or malformed."""


class BackboneFallbackWarning(UserWarning):
    """The requested backbone was unavailable and a fallback model is used instead."""
