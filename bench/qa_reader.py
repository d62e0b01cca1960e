"""Real-data benchmark: full-context extractive-QA reader, COVID-QA train → dev, cross-fitted.

Usage: python bench/qa_reader.py [--device auto|cpu|cuda] [--data DIR] [--backbone DIR]
                                 [--out-dir DIR] [--quick] [--budget-s S]
       python bench/qa_reader.py --install-from DIR   # reassemble a split reader into the cache

One invocation does, with sliding windows over whole articles (no passage cut around the
answer, for train and dev alike):

(a) **selection** — COVID-QA *train* is split by article (seeded, 80 / 20: "fit" / "val"); one
    reader per (learning rate, no-answer windows per question) candidate is trained on "fit"
    for ``--max-epochs`` epochs and scored on "val" after every epoch and for every maximum
    answer length of ``--answer-lengths``. Every candidate's score is logged and written. The
    best val F1 picks (lr, negatives, epochs, max answer length). Dev is never looked at.
    An epoch count below the maximum is read off the longer run (its linear decay had not
    reached zero yet); the final reader is then trained with its own schedule.
(b) **final reader** — trained on all of train with the chosen settings and scored on
    full-context dev (EM / F1 / Reference Overlap), beside a trivial baseline (the article
    sentence sharing most content words with the question). Saved as fp16 weights split into
    files ≤ 15 MiB plus ``reader.json`` (``--out-dir``/reader/); ``--install-from`` rebuilds the
    ordinary reader directory in bench/.cache/qa_reader/.
(c) **cross-fit** — two readers on disjoint article halves of train ("A", "B"; seeded), each
    scoring all of dev; per-question rows (prediction, EM / F1 vs gold, span probability,
    entropy, margin, start / end confidence, top-5 spans) go to qa_reader_predictions.json for
    bench/qa_difficulty.py.

Budget: designed for ≤ 6 min on one H200 (MiniLM-L6, 384-token windows, stride 128, batch 64,
bf16);
``--budget-s`` skips selection candidates whose projected cost would leave too little for
(b) and (c) (skips are written down). On 2 CPU cores the full run takes hours; ``--quick``
(a few articles, 1 epoch, short windows) is the CPU smoke test of the whole path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from qa_covid import (  # noqa: E402
    article_id,
    data_dir,
    load_split,
    passage,
    sentence_baseline,
    set_data_dir,
    split_articles,
)

from clinsynth.finetune import QAConfig, QAExample, exact_match, f1, qa_scores  # noqa: E402
from clinsynth.finetune.qa_bundle import assemble, load_assembled, save_split  # noqa: E402
from clinsynth.finetune.qa_fit import (  # noqa: E402
    as_prediction,
    fit_reader,
    load_tokenizer,
    pick_device,
    score_detailed,
    windows_per_example,
)

__all__ = ["CACHE", "load_split", "passage"]
RESULTS = REPO / "bench" / "results"
CACHE = REPO / "bench" / ".cache" / "qa_reader"
T0 = time.perf_counter()
_LOG: list[Path] = []


def say(msg: str) -> None:
    """Print ``msg`` with UTC time and seconds since start (and append it to the run log)."""
    line = f"{time.strftime('%H:%M:%S', time.gmtime())} +{time.perf_counter() - T0:6.1f}s {msg}"
    print(line, flush=True)
    for path in _LOG:
        with path.open("a") as fh:
            fh.write(line + "\n")


def _subset(items: list[Any], idx: list[int]) -> list[Any]:
    return [items[i] for i in idx]


def _shortest_articles(examples: list[QAExample], n: int, per: int) -> list[QAExample]:
    """Up to ``per`` questions from each of the ``n`` shortest articles (the --quick data)."""
    keep = sorted({(len(e.context), article_id(e)) for e in examples})[:n]
    out: list[QAExample] = []
    for _, art in keep:
        out += [e for e in examples if article_id(e) == art][:per]
    return out


def _with_gold(rows: list[dict[str, Any]], examples: list[QAExample]) -> list[dict[str, Any]]:
    """Each row plus its EM and F1 (0..1) against the gold answer."""
    for r, ex in zip(rows, examples, strict=True):
        r["em"], r["f1"] = exact_match(r["text"], ex.answer_text), f1(r["text"], ex.answer_text)
    return rows


def _scores(rows: list[dict[str, Any]], examples: list[QAExample]) -> dict[str, Any]:
    m = qa_scores([as_prediction(r) for r in rows], examples)
    keys = ("exact_match", "f1", "reference_overlap", "n")
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in m.items() if k in keys}


def select(args: argparse.Namespace, base: QAConfig, train, train_w, tok_bb, rate) -> dict:
    """(a) Candidates on train fit/val by article; returns the log and the chosen settings."""
    fit_i, val_i = split_articles(train, 0.8, args.seed)
    fit, val = _subset(train, fit_i), _subset(train, val_i)
    fit_w, val_w = _subset(train_w, fit_i), _subset(train_w, val_i)
    say(f"selection: fit {len(fit)} q / val {len(val)} q (train articles split 80/20)")
    cands = [(lr, neg) for neg in args.grid_neg for lr in args.grid_lr]
    n_all = sum(len(w) for w in train_w)
    n_ans = sum(any(x.has_answer for x in w) for w in train_w)

    def per_epoch(neg: int | None, share: float) -> float:
        return share * (n_all if neg is None else n_ans * (1.2 + neg))

    log: list[dict[str, Any]] = []
    for lr, neg in cands:
        cost = per_epoch(neg, 0.8) * args.max_epochs * 1.3
        reserve = 2 * per_epoch(neg, 1.0) * args.max_epochs
        left = args.budget_s - (time.perf_counter() - T0)
        if rate["w_per_s"] and log and (cost + reserve) / rate["w_per_s"] + 20 > left:
            say(f"  skip lr={lr} neg={neg}: projected {(cost + reserve) / rate['w_per_s']:.0f}s")
            log.append({"lr": lr, "negatives": neg, "skipped": "budget"})
            continue
        cfg = base.model_copy(
            update={"lr": lr, "negatives_per_example": neg, "epochs": args.max_epochs}
        )
        rec: dict[str, Any] = {"lr": lr, "negatives": neg, "by_epoch": {}}

        def hook(epoch: int, reader: Any, rec: dict[str, Any] = rec) -> None:
            rows = score_detailed(
                reader, val, windows=val_w, max_answer_lengths=args.answer_lengths
            )
            rec["by_epoch"][epoch] = {n: _scores(r, val) for n, r in rows.items()}
            best = max(rec["by_epoch"][epoch].items(), key=lambda kv: kv[1]["f1"])
            say(
                f"  lr={rec['lr']} neg={rec['negatives']} epoch {epoch}: "
                f"val F1 {best[1]['f1']:.1f} (max len {best[0]})"
            )

        t = time.perf_counter()
        reader = fit_reader(
            fit,
            cfg,
            device=args.device,
            tokenizer=tok_bb[1],
            backbone=tok_bb[0],
            windows=fit_w,
            on_epoch=hook,
            progress=say,
        )
        seen = reader.train_stats["trainer"]["steps"] * cfg.batch_size
        rate["w_per_s"] = seen / max(1e-6, reader.train_stats["train_seconds"])
        rec["seconds"] = round(time.perf_counter() - t, 1)
        rec["n_windows_per_epoch"] = reader.train_stats["n_windows_per_epoch"]
        log.append(rec)
        del reader
    scored = [
        (s["f1"], r["lr"], r["negatives"], e, n)
        for r in log
        if "by_epoch" in r
        for e, by_len in r["by_epoch"].items()
        for n, s in by_len.items()
    ]
    best_f1, lr, neg, epochs, max_len = max(scored, key=lambda t: t[0])
    chosen = {
        "lr": lr,
        "negatives_per_example": neg,
        "epochs": epochs,
        "max_answer_length": max_len,
    }
    say(f"chosen {chosen} (val F1 {best_f1:.1f})")
    n_fit_art, n_val_art = len({article_id(e) for e in fit}), len({article_id(e) for e in val})
    return {
        "protocol": f"train split by article (seed {args.seed}): fit {n_fit_art} articles / "
        f"val {n_val_art} articles; dev untouched",
        "n_fit": len(fit),
        "n_val": len(val),
        "val_articles": sorted({article_id(e) for e in val}),
        "candidates": log,
        "chosen": chosen,
        "chosen_val_f1": best_f1,
    }


def result_n_articles(examples: list[QAExample]) -> int:
    return len({article_id(e) for e in examples})


def _versions(device: str) -> dict[str, str]:
    import numpy
    import tokenizers
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu_count": str(os.cpu_count()),
        "gpu": gpu,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--data", type=Path, default=None, help="covid_qa folder (train/dev.json)")
    p.add_argument("--backbone", default=None, help="model dir (default: bundled MiniLM)")
    p.add_argument("--out-dir", type=Path, default=None, help="default bench/results (+cache)")
    p.add_argument("--install-from", type=Path, default=None, help="reassemble a split reader")
    p.add_argument("--quick", action="store_true", help="CPU smoke run: few articles, 1 epoch")
    p.add_argument("--budget-s", type=float, default=330.0)
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-epochs", type=int, default=4)
    p.add_argument("--grid-lr", type=float, nargs="+", default=[1e-4, 2.5e-4])
    p.add_argument(
        "--grid-neg",
        type=lambda s: None if s == "all" else int(s),
        nargs="+",
        default=[4, None],
        help="no-answer windows per question per epoch, or all",
    )
    p.add_argument("--answer-lengths", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-selection",
        action="store_true",
        help="skip (a): use --lr/--negatives/--epochs/--max-answer-length as given",
    )
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--negatives", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-answer-length", type=int, default=64)
    p.add_argument("--max-train-windows", type=int, default=None, help="cap, final reader")
    p.add_argument("--crossfit-max-train-windows", type=int, default=None, help="cap, A / B")
    p.add_argument(
        "--dev-articles",
        type=int,
        default=None,
        help="score a seeded random subset of this many dev articles (CPU budget)",
    )
    p.add_argument("--crossfit-first", action="store_true", help="(c) before (b)")
    p.add_argument(
        "--train-articles",
        type=int,
        default=None,
        help="train on a seeded random subset of this many train articles (CPU)",
    )
    p.add_argument("--roundtrip-questions", type=int, default=16)
    p.add_argument(
        "--halves",
        nargs="+",
        default=["A", "B"],
        choices=["A", "B"],
        help="cross-fit readers to train (split a run across processes)",
    )
    p.add_argument("--skip-final", action="store_true", help="no (b): cross-fit only")
    p.add_argument(
        "--save-crossfit",
        action="store_true",
        help="also save readers A / B split (out-dir/reader_A, reader_B) for bench/qa_harder.py",
    )
    args = p.parse_args()
    if args.install_from is not None:
        say(f"installed reader in {assemble(args.install_from, CACHE)}")
        return
    set_data_dir(args.data)
    if args.backbone is None:
        from clinsynth.finetune import fallback_model_dir

        args.backbone = str(fallback_model_dir())
    if args.quick:
        args.max_length, args.doc_stride, args.max_epochs = 128, 32, 1
        args.grid_lr, args.grid_neg, args.answer_lengths = [2e-4], [1, 2], [32, 64]
    out = args.out_dir or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    stem = "qa_reader_quick" if args.quick else "qa_reader"
    _LOG.append(out / f"{stem}.log")
    _LOG[0].write_text("")
    args.device = pick_device(args.device)
    say(f"device {args.device}; data {data_dir()}; backbone {args.backbone}; out {out}")

    train, dev = load_split("train"), load_split("dev")
    if args.quick:
        train, dev = _shortest_articles(train, 3, 8), _shortest_articles(dev, 1, 6)
    if args.train_articles is not None:
        share = args.train_articles / result_n_articles(train)
        keep = set(split_articles(train, share, args.seed + 2)[0])
        train = [e for i, e in enumerate(train) if i in keep]
    if args.dev_articles is not None:
        keep = set(split_articles(dev, args.dev_articles / result_n_articles(dev), args.seed)[0])
        dev = [e for i, e in enumerate(dev) if i in keep]
    base = QAConfig(
        backbone=args.backbone,
        max_length=args.max_length,
        doc_stride=args.doc_stride,
        batch_size=args.batch_size,
        seed=args.seed,
        n_best_size=20,
    )
    tok_bb = load_tokenizer(base)
    train_w = windows_per_example(train, tok_bb[1], base)
    dev_w = windows_per_example(dev, tok_bb[1], base)
    say(
        f"windows: train {sum(map(len, train_w))} ({len(train)} q), dev {sum(map(len, dev_w))} "
        f"({len(dev)} q)"
    )
    result: dict[str, Any] = {
        "benchmark": "covid_qa train -> dev, full-context extractive reader (sliding windows)",
        "command": " ".join(["python", "bench/qa_reader.py", *sys.argv[1:]]),
        "quick": args.quick,
        "data": str(data_dir()),
        "contexts": "whole articles, train and dev (no passage around the answer)",
        "n_train": len(train),
        "n_dev": len(dev),
        "n_train_articles": len({article_id(e) for e in train}),
        "n_dev_articles": len({article_id(e) for e in dev}),
        "windows": {"max_length": args.max_length, "doc_stride": args.doc_stride},
        "train_subset": None
        if args.train_articles is None
        else f"seeded random {args.train_articles} of the train articles (seed {args.seed + 2}) "
        "(CPU budget)",
        "dev_subset": None
        if args.dev_articles is None
        else f"seeded random {args.dev_articles} of the dev articles (seed {args.seed}), all "
        "their questions, whole articles (CPU budget)",
        "seed": args.seed,
        "device": args.device,
        "budget_s": args.budget_s,
        "versions": _versions(args.device),
        "loadavg_start": os.getloadavg(),
    }
    timings: dict[str, float] = {"windowing": round(time.perf_counter() - T0, 1)}
    res_path, pred_path = out / f"{stem}.json", out / f"{stem}_predictions.json"

    def write() -> None:
        result["timings_s"] = timings | {"total": round(time.perf_counter() - T0, 1)}
        result["loadavg_end"] = os.getloadavg()
        res_path.write_text(json.dumps(result, indent=2) + "\n")

    rate: dict[str, float] = {"w_per_s": 0.0}
    t = time.perf_counter()
    if args.no_selection:
        chosen = {
            "lr": args.lr,
            "negatives_per_example": args.negatives,
            "epochs": args.epochs,
            "max_answer_length": args.max_answer_length,
        }
        sel = {
            "protocol": "none: fixed settings given on the command line, NOT selected on "
            "train or dev (CPU budget)",
            "chosen": chosen,
        }
    else:
        sel = select(args, base, train, train_w, tok_bb, rate)
    result["selection"] = sel
    timings["selection"] = round(time.perf_counter() - t, 1)
    write()
    cfg = base.model_copy(update=sel["chosen"])
    gold = {
        e.id: {
            "answer_text": e.answer_text,
            "answer_start": e.answer_start,
            "article": article_id(e),
            "question": e.question,
        }
        for e in dev
    }
    predictions: dict[str, Any] = {}

    def write_predictions() -> None:
        pred_path.write_text(json.dumps({"dev_gold": gold, "readers": predictions}) + "\n")

    def run_final() -> None:
        t = time.perf_counter()
        say("final reader on all of train")
        final = fit_reader(
            train,
            cfg.model_copy(update={"max_train_windows": args.max_train_windows}),
            device=args.device,
            tokenizer=tok_bb[1],
            backbone=tok_bb[0],
            windows=train_w,
            progress=say,
        )
        timings["final_train"] = round(time.perf_counter() - t, 1)
        parts_dir = out / "reader" if args.out_dir else CACHE.with_name("qa_reader_parts")
        files = save_split(final, parts_dir)
        t = time.perf_counter()
        rows = _with_gold(score_detailed(final, dev, windows=dev_w)[cfg.max_answer_length], dev)
        timings["final_score_dev"] = round(time.perf_counter() - t, 1)
        result["final"] = {
            "settings": sel["chosen"],
            "dev": _scores(rows, dev),
            "dev_baseline_best_overlap_sentence": sentence_baseline(dev),
            "train_stats": {k: v for k, v in final.train_stats.items() if k != "trainer"}
            | {"epoch_loss": final.train_stats["trainer"]["epoch_loss"]},
            "saved_parts": [f.name for f in files],
            "max_part_bytes": max(f.stat().st_size for f in files),
        }
        baseline = result["final"]["dev_baseline_best_overlap_sentence"]
        say(f"final dev: {result['final']['dev']}  baseline {baseline}")
        with tempfile.TemporaryDirectory(prefix="qa-reader-rt-") as tmp:
            check = load_assembled(parts_dir, tmp)
        check.model.to(args.device)
        n_rt = min(args.roundtrip_questions, len(dev))
        again = score_detailed(check, dev[:n_rt], windows=dev_w[:n_rt])[cfg.max_answer_length]
        same = sum(a["text"] == b["text"] for a, b in zip(again, rows[:n_rt], strict=True))
        result["final"]["roundtrip"] = {
            "questions": n_rt,
            "same_answer": same,
            "note": "reassembled fp16 reader vs the fp32 one",
        }
        say(f"split save / reassemble round trip: {same}/{n_rt} identical answers")
        write()
        predictions["final"] = rows
        write_predictions()

    def run_crossfit() -> None:
        half_a, half_b = split_articles(train, 0.5, args.seed + 1)
        arts = [{article_id(train[i]) for i in h} for h in (half_a, half_b)]
        assert not arts[0] & arts[1] and not set(half_a) & set(half_b)
        protocol = f"train split in two halves by article (seed {args.seed + 1})"
        result["crossfit"] = {
            "protocol": protocol,
            "dev_baseline_best_overlap_sentence": sentence_baseline(dev),
            "articles_in_both": len(arts[0] & arts[1]),
            "halves": {},
        }
        for name, idx in (("A", half_a), ("B", half_b)):
            if name not in args.halves:
                continue
            t = time.perf_counter()
            say(f"cross-fit reader {name}: {len(idx)} q, {len(arts[name == 'B'])} articles")
            r = fit_reader(
                _subset(train, idx),
                cfg.model_copy(update={"max_train_windows": args.crossfit_max_train_windows}),
                device=args.device,
                tokenizer=tok_bb[1],
                backbone=tok_bb[0],
                windows=_subset(train_w, idx),
                progress=say,
            )
            rows = _with_gold(score_detailed(r, dev, windows=dev_w)[cfg.max_answer_length], dev)
            predictions[name] = rows
            if args.save_crossfit:
                save_split(r, (out if args.out_dir else CACHE.parent) / f"reader_{name}")
            result["crossfit"]["halves"][name] = {
                "n_train": len(idx),
                "articles": sorted(arts[name == "B"]),
                "dev": _scores(rows, dev),
                "seconds": round(time.perf_counter() - t, 1),
            }
            say(f"cross-fit {name} dev: {result['crossfit']['halves'][name]['dev']}")
            timings[f"crossfit_{name}"] = round(time.perf_counter() - t, 1)
            write_predictions()
            write()
            del r

    stages = (run_crossfit, run_final) if args.crossfit_first else (run_final, run_crossfit)
    if args.skip_final:
        stages = (run_crossfit,)
    for stage in stages:
        stage()
    say(f"done -> {res_path}, {pred_path}")


if __name__ == "__main__":
    main()
