"""Extractive-QA training and scoring on any device, without the transformers Trainer.

:func:`train_reader` (qa.py) goes through ``transformers.Trainer``, which needs ``accelerate``
and runs one small batch at a time on CPU. This module is the same recipe — sliding windows,
every answer window plus ``negatives_per_example`` no-answer windows re-drawn each epoch,
AdamW with linear warm-up and decay — as a plain torch loop: the windows are tensorised once
(kept on the device), batches are cut to their longest window, and on CUDA the forward passes
run under bf16 autocast. It needs only torch, transformers, numpy and pydantic, so it also
runs on a bare accelerator machine. :func:`score_detailed` returns, per question, the best
span plus what a difficulty score may use without the gold answer: span probability, entropy
over candidate spans, start/end confidence, margin to the runner-up, and the top-k spans.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from clinsynth.finetune._training import keeps_global_rng, optimizer_step, seed_all
from clinsynth.finetune.backbone import ResolvedBackbone, resolve_backbone
from clinsynth.finetune.errors import DatasetError
from clinsynth.finetune.qa import Reader
from clinsynth.finetune.qa_data import QAConfig, QAExample, QAPrediction, check_unique_ids
from clinsynth.finetune.qa_windows import SampledWindows, Window, build_windows

log = logging.getLogger(__name__)
EpochHook = Callable[[int, Reader], None]


def pick_device(name: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; other names are returned."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DatasetError(f"device {name!r} requested but torch sees no CUDA device")
    return name


def load_tokenizer(cfg: QAConfig) -> tuple[ResolvedBackbone, Any]:
    """Resolve ``cfg.backbone`` (offline) and load its fast tokenizer."""
    from transformers import AutoTokenizer

    backbone = resolve_backbone(cfg.backbone, allow_fallback=cfg.allow_fallback)
    return backbone, AutoTokenizer.from_pretrained(backbone.path_or_name, local_files_only=True)


def windows_per_example(
    examples: Sequence[QAExample], tokenizer: Any, cfg: QAConfig, chunk: int = 256
) -> list[list[Window]]:
    """The windows of each example (with offsets), so subsets can reuse one tokenisation."""
    out: list[list[Window]] = [[] for _ in examples]
    for lo in range(0, len(examples), chunk):
        for w in build_windows(examples[lo : lo + chunk], tokenizer, cfg, first_index=lo):
            out[w.example_index].append(w)
    return out


def _flatten(per_example: Sequence[Sequence[Window]]) -> list[Window]:
    return [dataclasses.replace(w, example_index=i) for i, ws in enumerate(per_example) for w in ws]


def _stack(windows: Sequence[Window], pad_id: int, length: int, device: str) -> dict[str, Any]:
    """Pad the windows into int tensors on ``device`` (ids, mask, types, answer positions)."""
    import torch

    n = len(windows)
    ids = np.full((n, length), pad_id, dtype=np.int32)
    mask = np.zeros((n, length), dtype=np.int8)
    types = np.zeros((n, length), dtype=np.int8)
    for i, w in enumerate(windows):
        k = len(w.input_ids)
        ids[i, :k], mask[i, :k] = w.input_ids, 1
        if w.token_type_ids is not None:
            types[i, :k] = w.token_type_ids
    pos = np.array([[w.start_position, w.end_position] for w in windows], dtype=np.int64)
    return {
        "input_ids": torch.from_numpy(ids).to(device),
        "attention_mask": torch.from_numpy(mask).to(device),
        "token_type_ids": torch.from_numpy(types).to(device),
        "positions": torch.from_numpy(pos.reshape(n, 2)).to(device),
    }


def _batch(tensors: dict[str, Any], sel: Any, labels: bool) -> dict[str, Any]:
    """Rows ``sel`` cut to their longest window, as the model's int64 inputs."""
    mask = tensors["attention_mask"][sel]
    width = int(mask.sum(dim=1).max())
    out = {
        "input_ids": tensors["input_ids"][sel, :width].long(),
        "attention_mask": mask[:, :width].long(),
        "token_type_ids": tensors["token_type_ids"][sel, :width].long(),
    }
    if labels:
        out["start_positions"] = tensors["positions"][sel, 0]
        out["end_positions"] = tensors["positions"][sel, 1]
    return out


def _autocast(device: str) -> Any:
    import contextlib

    import torch

    if device.startswith("cuda"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _optimizer(model: Any, cfg: QAConfig, total_steps: int) -> tuple[Any, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    warmup = int(cfg.warmup_ratio * total_steps)
    return opt, get_linear_schedule_with_warmup(opt, warmup, total_steps)


@keeps_global_rng
def fit_reader(
    train: Sequence[QAExample],
    cfg: QAConfig,
    *,
    device: str = "auto",
    tokenizer: Any = None,
    backbone: ResolvedBackbone | None = None,
    windows: Sequence[Sequence[Window]] | None = None,
    on_epoch: EpochHook | None = None,
    progress: Callable[[str], None] | None = None,
) -> Reader:
    """Fine-tune a reader on ``train`` for ``round(cfg.epochs)`` epochs (or ``cfg.max_steps``).

    ``windows`` (from :func:`windows_per_example`, aligned with ``train``) skips tokenising
    again; ``on_epoch(epoch, reader)`` runs after each epoch with the model in eval mode.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering

    say = progress or log.info
    if not train:
        raise DatasetError("train set is empty")
    check_unique_ids(train)
    dev = pick_device(device)
    if tokenizer is None or backbone is None:
        backbone, tokenizer = load_tokenizer(cfg)
    seed_all(cfg.seed)
    model = AutoModelForQuestionAnswering.from_pretrained(
        backbone.path_or_name, local_files_only=True, dtype=torch.float32
    ).to(dev)
    t0 = time.perf_counter()
    per_example = windows if windows is not None else windows_per_example(train, tokenizer, cfg)
    if len(per_example) != len(train):
        raise DatasetError("windows must be aligned with the training examples")
    flat = _flatten(per_example)
    dataset = SampledWindows(flat, cfg.negatives_per_example, cfg.max_train_windows, cfg.seed)
    if len(dataset) == 0:
        raise DatasetError("no training windows (max_train_windows or negatives too small)")
    tensors = _stack(flat, tokenizer.pad_token_id or 0, cfg.max_length, dev)
    n_epochs = max(1, round(cfg.epochs))
    steps_per_epoch = -(-len(dataset) // cfg.batch_size)
    total = cfg.max_steps or n_epochs * steps_per_epoch
    opt, sched = _optimizer(model, cfg, total)
    reader = Reader(model, tokenizer, cfg, backbone)
    t1 = time.perf_counter()
    step, losses, hook_seconds = 0, [], 0.0
    for epoch in range(n_epochs):
        model.train()
        dataset.set_epoch(epoch)
        order = torch.tensor([dataset.window_index(i) for i in range(len(dataset))])
        gen = torch.Generator().manual_seed(cfg.seed * 1009 + epoch)
        order = order[torch.randperm(len(order), generator=gen)].to(dev)
        running = 0.0
        for lo in range(0, len(order), cfg.batch_size):
            if step >= total:
                break
            with _autocast(dev):
                loss = model(**_batch(tensors, order[lo : lo + cfg.batch_size], True)).loss
            running += optimizer_step(model, loss, opt, sched)
            step += 1
        losses.append(running / max(1, steps_per_epoch))
        model.eval()
        say(
            f"epoch {epoch + 1}/{n_epochs}: {len(dataset)} windows, loss {losses[-1]:.3f}, "
            f"{time.perf_counter() - t1:.0f}s training so far"
        )
        if on_epoch is not None:
            t_hook = time.perf_counter()
            on_epoch(epoch + 1, reader)
            hook_seconds += time.perf_counter() - t_hook
    model.eval()
    reader.train_stats = {
        "n_examples": len(train),
        "n_windows_total": len(flat),
        "n_answer_windows_total": sum(w.has_answer for w in flat),
        "n_windows_per_epoch": len(dataset),
        "n_answer_windows_per_epoch": dataset.n_positive,
        "windowing_seconds": t1 - t0,
        "train_seconds": time.perf_counter() - t1 - hook_seconds,
        "epoch_hook_seconds": hook_seconds,
        "trainer": {"steps": step, "epoch_loss": losses, "device": dev, "loop": "qa_fit"},
    }
    return reader


def window_logits(
    reader: Reader,
    examples: Sequence[QAExample],
    *,
    windows: Sequence[Sequence[Window]] | None = None,
    batch_size: int = 256,
) -> list[list[tuple[Window, np.ndarray, np.ndarray]]]:
    """Per example, each window with its start and end logits (float32, unpadded)."""
    import torch

    per_example = (
        windows
        if windows is not None
        else windows_per_example(examples, reader.tokenizer, reader.cfg)
    )
    flat = _flatten(per_example)
    dev = str(next(reader.model.parameters()).device)
    out: list[list[tuple[Window, np.ndarray, np.ndarray]]] = [[] for _ in examples]
    reader.model.eval()
    for lo in range(0, len(flat), 4096):
        part = flat[lo : lo + 4096]
        tensors = _stack(part, reader.tokenizer.pad_token_id or 0, reader.cfg.max_length, dev)
        with torch.inference_mode(), _autocast(dev):
            for b in range(0, len(part), batch_size):
                sel = torch.arange(b, min(b + batch_size, len(part)), device=dev)
                res = reader.model(**_batch(tensors, sel, False))
                starts = res["start_logits"].float().cpu().numpy()
                ends = res["end_logits"].float().cpu().numpy()
                for k, w in enumerate(part[b : b + len(sel)]):
                    n = len(w.input_ids)
                    out[w.example_index].append((w, starts[k, :n], ends[k, :n]))
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def decode_detailed(
    example: QAExample,
    parts: Sequence[tuple[Window, np.ndarray, np.ndarray]],
    *,
    max_answer_length: int,
    n_best: int = 20,
    top_k: int = 5,
) -> dict[str, Any]:
    """Best span over all windows (always answers) and gold-free confidence signals.

    Candidates are each window's ``n_best`` best valid (start, end) pairs among its ``n_best``
    top starts and ends; ``p_best`` and ``entropy`` are the softmax over those candidates'
    scores (pooled over windows, one score per character span); ``p_start`` / ``p_end`` are
    the start / end softmax peaks over the context tokens of the window holding the best span.
    """
    spans: dict[tuple[int, int], float] = {}
    null_score = math.inf
    best_window: tuple[float, float, float] = (-math.inf, 0.0, 0.0)  # score, p_start, p_end
    for w, s, e in parts:
        assert w.offsets is not None
        null_score = min(null_score, float(s[0] + e[0]))
        ctx = np.flatnonzero(w.offsets[:, 0] >= 0)
        if len(ctx) == 0:
            continue
        top_s = ctx[np.argsort(s[ctx])[::-1][:n_best]]
        top_e = ctx[np.argsort(e[ctx])[::-1][:n_best]]
        score = s[top_s][:, None] + e[top_e][None, :]
        length = top_e[None, :] - top_s[:, None] + 1
        ok = (length >= 1) & (length <= max_answer_length)
        flat = np.where(ok, score, -np.inf).ravel()
        keep = np.argsort(flat)[::-1][:n_best]  # the window's n_best best valid pairs
        for k in keep[np.isfinite(flat[keep])]:
            i, j = divmod(int(k), score.shape[1])
            key = (int(w.offsets[top_s[i], 0]), int(w.offsets[top_e[j], 1]))
            val = float(score[i, j])
            if val > spans.get(key, -math.inf):
                spans[key] = val
        if ok.any():
            win_best = float(score[ok].max())
            if win_best > best_window[0]:
                ps, pe = _softmax(s[ctx]).max(), _softmax(e[ctx]).max()
                best_window = (win_best, float(ps), float(pe))
    ranked = sorted(spans.items(), key=lambda kv: -kv[1])
    if not ranked:
        return {
            "id": example.id,
            "text": None,
            "start": None,
            "end": None,
            "score": None,
            "null_score": null_score,
            "p_best": 0.0,
            "entropy": 0.0,
            "margin": 0.0,
            "p_start": 0.0,
            "p_end": 0.0,
            "n_windows": len(parts),
            "top": [],
        }
    scores = np.array([v for _, v in ranked])
    probs = _softmax(scores)
    (start, end), best = ranked[0]
    return {
        "id": example.id,
        "text": example.context[start:end],
        "start": start,
        "end": end,
        "score": best,
        "null_score": null_score,
        "p_best": float(probs[0]),
        "entropy": float(-(probs * np.log(probs + 1e-12)).sum()),
        "margin": float(scores[0] - scores[1]) if len(scores) > 1 else 0.0,
        "p_start": best_window[1],
        "p_end": best_window[2],
        "n_windows": len(parts),
        "top": [
            {"start": a, "end": b, "score": v, "p": float(p)}
            for ((a, b), v), p in zip(ranked[:top_k], probs[:top_k], strict=False)
        ],
    }


def as_prediction(detail: dict[str, Any]) -> QAPrediction:
    """The forced (always answering) :class:`QAPrediction` of a :func:`decode_detailed` row."""
    return QAPrediction(
        id=detail["id"],
        text=detail["text"],
        start=detail["start"],
        end=detail["end"],
        score=detail["score"],
        null_score=detail["null_score"],
        is_unanswerable=detail["text"] is None,
    )


def score_detailed(
    reader: Reader,
    examples: Sequence[QAExample],
    *,
    windows: Sequence[Sequence[Window]] | None = None,
    max_answer_lengths: Sequence[int] | None = None,
    batch_size: int = 256,
) -> dict[int, list[dict[str, Any]]]:
    """Decoded rows per max answer length (default: the reader's), from one forward pass."""
    logits = window_logits(reader, examples, windows=windows, batch_size=batch_size)
    lengths = list(max_answer_lengths or [reader.cfg.max_answer_length])
    return {
        n: [
            decode_detailed(ex, parts, max_answer_length=n, n_best=reader.cfg.n_best_size)
            for ex, parts in zip(examples, logits, strict=True)
        ]
        for n in lengths
    }
