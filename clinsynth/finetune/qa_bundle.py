"""A reader as a few small files: fp16 weights cut into parts of at most ``max_bytes``.

A fine-tuned reader has to travel through channels that cap each file's size (a remote
machine's output folder, say). :func:`save_split` writes the weights in fp16, cutting any
tensor larger than a part along its first dimension, into ``weights-NN.safetensors`` files of
at most ``max_bytes`` each, plus one ``reader.json`` that holds the tensor layout and the small
text files (model config, tokenizer, clinsynth's reader config). :func:`assemble` puts them
back together into an ordinary saved reader directory that :meth:`Reader.load` opens.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from clinsynth.finetune.errors import FinetuneError
from clinsynth.finetune.qa import Reader

BUNDLE_FILE = "reader.json"
_TEXT_SUFFIXES = (".json", ".txt")
_HEADER_ROOM = 64 * 1024  # bytes kept free in each part for the safetensors header


def save_split(reader: Reader, directory: str | Path, *, max_bytes: int = 15 * 2**20) -> list[Path]:
    """Write ``reader`` as fp16 weight parts ≤ ``max_bytes`` plus ``reader.json``; returns
    the files written."""
    import torch
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    budget = max_bytes - _HEADER_ROOM
    if budget <= 0:
        raise FinetuneError(f"max_bytes={max_bytes} leaves no room for weights")
    with tempfile.TemporaryDirectory(prefix="clinsynth-reader-") as tmp:
        reader.save(tmp)
        texts = {
            p.name: p.read_text(encoding="utf-8")
            for p in sorted(Path(tmp).iterdir())
            if p.suffix in _TEXT_SUFFIXES and p.name != "model.safetensors.index.json"
        }
    parts: list[dict[str, Any]] = [{}]
    used = [0]
    layout: dict[str, dict[str, Any]] = {}
    for name, tensor in reader.model.state_dict().items():
        half = tensor.detach().to("cpu", torch.float16 if tensor.is_floating_point() else None)
        row_bytes = max(1, half[0].numel() * half.element_size()) if half.dim() else half.nbytes
        if row_bytes > budget:
            raise FinetuneError(f"one row of {name} ({row_bytes} bytes) exceeds max_bytes")
        pieces = []
        lo, rows = 0, half.shape[0] if half.dim() else 1
        while lo < rows:
            room = budget - used[-1]
            take = room // row_bytes if half.dim() else (1 if half.nbytes <= room else 0)
            if take == 0:
                parts.append({})
                used.append(0)
                continue
            take = min(take, rows - lo)
            piece = half[lo : lo + take] if half.dim() else half
            key = f"{name}@{lo}"
            parts[-1][key] = piece.contiguous().clone()
            used[-1] += piece.numel() * piece.element_size()
            pieces.append([len(parts) - 1, key])
            lo += take
        layout[name] = {"dtype": str(tensor.dtype).removeprefix("torch."), "pieces": pieces}
    written = []
    for i, part in enumerate(parts):
        path = out / f"weights-{i:02d}.safetensors"
        save_file(part, str(path))
        written.append(path)
    bundle = out / BUNDLE_FILE
    bundle.write_text(json.dumps({"format": 1, "files": texts, "tensors": layout}))
    return [*written, bundle]


def assemble(parts_dir: str | Path, target: str | Path) -> Path:
    """Rebuild an ordinary saved reader in ``target`` from :func:`save_split`'s files."""
    import torch
    from safetensors.torch import load_file, save_file

    src, dst = Path(parts_dir), Path(target)
    bundle_path = src / BUNDLE_FILE
    if not bundle_path.is_file():
        raise FinetuneError(f"{src} holds no {BUNDLE_FILE}: not a split reader")
    bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    loaded: dict[int, dict[str, Any]] = {}
    state = {}
    for name, info in bundle["tensors"].items():
        chunks = []
        for index, key in info["pieces"]:
            if index not in loaded:
                path = src / f"weights-{index:02d}.safetensors"
                if not path.is_file():
                    raise FinetuneError(f"split reader is missing {path.name}")
                loaded[index] = load_file(str(path))
            chunks.append(loaded[index][key])
        whole = torch.cat(chunks) if chunks[0].dim() else chunks[0]
        state[name] = whole.to(getattr(torch, info["dtype"])).contiguous()
    dst.mkdir(parents=True, exist_ok=True)
    for name, text in bundle["files"].items():
        (dst / name).write_text(text, encoding="utf-8")
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def load_assembled(parts_dir: str | Path, target: str | Path) -> Reader:
    """:func:`assemble` then :meth:`Reader.load`."""
    return Reader.load(assemble(parts_dir, target))
