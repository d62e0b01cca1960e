"""A tiny random BERT saved locally, for training tests and stub benchmarks (no model hub)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def save_tiny_bert(
    directory: Path,
    tokens: Iterable[str],
    *,
    hidden: int = 32,
    layers: int = 2,
    positions: int = 128,
) -> Path:
    """Save a random BERT (``layers`` × ``hidden``) whose WordPiece vocabulary is BERT's
    special tokens plus ``tokens`` (duplicates dropped, order kept) into ``directory``."""
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = list(dict.fromkeys([*SPECIAL, *tokens]))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(vocab=str(directory / "vocab.txt")).save_pretrained(directory)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=positions,
    )
    BertModel(config).save_pretrained(directory)
    return directory
