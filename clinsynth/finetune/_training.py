"""Shared plumbing for the classifiers and readers: datasets, Trainer set-up, batched inference.

torch and transformers are imported inside functions so importing the package stays cheap.
"""

from __future__ import annotations

import functools
import random
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

Feature = dict[str, Any]
P = ParamSpec("P")
T = TypeVar("T")


class FeatureDataset:
    """A map-style dataset over pre-tokenised features (lists or int arrays per key)."""

    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> Feature:
        return plain(self.features[index])


def plain(feature: Feature) -> Feature:
    """A copy of ``feature`` with numpy arrays turned into lists, as the collators expect."""
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in feature.items()}


@contextmanager
def work_dir(output_dir: str | None) -> Iterator[str]:
    """Yield ``output_dir`` (created) or a temporary directory removed afterwards."""
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        yield output_dir
        return
    with tempfile.TemporaryDirectory(prefix="clinsynth-finetune-") as tmp:
        yield tmp


def run_trainer(
    model: Any,
    dataset: Any,
    collator: Callable[[list[Feature]], Any],
    hp: Any,
    *,
    output_dir: str,
    callbacks: Sequence[Any] = (),
) -> dict[str, float]:
    """Fine-tune ``model`` on ``dataset`` with a transformers Trainer; returns train metrics.

    ``hp`` is a classification or QA config: epochs, batch_size, lr, weight_decay,
    warmup_ratio, seed, max_steps.
    """
    import torch
    from transformers import PrinterCallback, Trainer, TrainingArguments

    epochs, batch_size, lr, seed = hp.epochs, hp.batch_size, hp.lr, hp.seed
    weight_decay, warmup_ratio, max_steps = hp.weight_decay, hp.warmup_ratio, hp.max_steps

    steps_per_epoch = max(1, -(-len(dataset) // batch_size))
    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps is not None else -1,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        weight_decay=weight_decay,
        warmup_steps=warmup_ratio,  # a float < 1 is a fraction of the total steps
        lr_scheduler_type="linear",
        seed=seed,
        data_seed=seed,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="steps",
        logging_steps=max(1, min(50, steps_per_epoch // 4)),
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),  # mixed precision on a GPU only
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        callbacks=list(callbacks),
    )
    # It prints every log line to stdout, which is the host's (an MCP stdio server's protocol).
    trainer.remove_callback(PrinterCallback)
    output = trainer.train()
    model.eval()
    return {k: float(v) for k, v in output.metrics.items() if isinstance(v, int | float)}


def optimizer_step(model: Any, loss: Any, optimizer: Any, schedule: Any) -> float:
    """One update: backward pass, gradient norm clipped at 1.0, optimizer and schedule step,
    gradients cleared; returns the loss as a float."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def train_loop(
    model: Any, dataset: Any, collator: Callable[[list[Feature]], Any], hp: Any
) -> dict[str, float]:
    """Fine-tune ``model`` on ``dataset`` with a plain PyTorch loop; returns train metrics.

    The Trainer's recipe without its dependencies (it needs ``accelerate``): AdamW (no weight
    decay on biases and LayerNorm weights), linear decay after ``warmup_ratio`` of the steps,
    gradient norm clipped at 1.0, batches shuffled by a generator seeded from ``hp.seed``, on
    the GPU when there is one (bf16 autocast), else on the CPU.
    """
    import math
    import time

    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    model.to(device).train()
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=hp.batch_size,
        shuffle=True,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(hp.seed),
    )
    steps = hp.max_steps or max(1, math.ceil(hp.epochs * len(loader)))
    warmup = int(hp.warmup_ratio * steps)
    no_decay = ("bias", "LayerNorm.weight", "layernorm.weight", "norm.weight")
    params = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [
            {
                "params": [p for n, p in params if not n.endswith(no_decay)],
                "weight_decay": hp.weight_decay,
            },
            {"params": [p for n, p in params if n.endswith(no_decay)], "weight_decay": 0.0},
        ],
        lr=hp.lr,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            (step + 1) / max(1, warmup)
            if step < warmup
            else max(0.0, (steps - step) / max(1, steps - warmup))
        ),
    )
    start, done, total_loss = time.perf_counter(), 0, 0.0
    while done < steps:
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss
            total_loss += optimizer_step(model, loss, optimizer, schedule)
            done += 1
            if done >= steps:
                break
    model.eval()
    seconds = time.perf_counter() - start
    return {"train_loss": total_loss / done, "train_steps": done, "train_runtime": seconds}


def batched_outputs(
    model: Any,
    features: Sequence[Feature],
    collator: Callable[[list[Feature]], Any],
    batch_size: int,
    keys: Sequence[str],
) -> list[np.ndarray]:
    """Run ``model`` over ``features`` in batches; return the named outputs as float arrays."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    chunks: list[list[np.ndarray]] = [[] for _ in keys]
    on_gpu = device.type == "cuda" and torch.cuda.is_bf16_supported()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_gpu)
    with torch.inference_mode(), autocast:
        for i in range(0, len(features), batch_size):
            batch = collator([plain(f) for f in features[i : i + batch_size]])
            out = model(**{k: v.to(device) for k, v in batch.items()})
            for chunk, key in zip(chunks, keys, strict=True):
                chunk.append(out[key].float().cpu().numpy())
    return [np.concatenate(c) if c else np.zeros((0,)) for c in chunks]


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (heads are initialised from this seed)."""
    from transformers import set_seed

    set_seed(seed)


def keeps_global_rng(fn: Callable[P, T]) -> Callable[P, T]:
    """Decorate a training function: the global random generators it seeds (python's, numpy's
    and torch's CPU one, as the Trainer does too) are given back to the caller as they were."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        import torch

        state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
        try:
            return fn(*args, **kwargs)
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])
            torch.random.set_rng_state(state[2])

    return wrapper


def save_model_dir(model: Any, tokenizer: Any, directory: Path, meta_file: str, meta: Any) -> None:
    """Write a fine-tuned model, its tokenizer and our metadata JSON to ``directory``."""
    import json

    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / meta_file).write_text(json.dumps(meta, indent=2))


def load_model_dir(auto_class: Any, directory: Path, meta_file: str, what: str) -> tuple[Any, ...]:
    """Load (model in eval mode, tokenizer, metadata) written by :func:`save_model_dir`."""
    import json

    from transformers import AutoTokenizer

    from clinsynth.finetune.errors import FinetuneError

    if not (directory / meta_file).is_file():
        raise FinetuneError(f"{directory} is not a saved clinsynth {what} (no {meta_file})")
    meta = json.loads((directory / meta_file).read_text())
    from clinsynth.runtime.quiet import quiet_progress_bars

    with quiet_progress_bars():
        model = auto_class.from_pretrained(directory, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    return model.eval(), tokenizer, meta
