"""PHI recall per kind and false positives on clean clinical sentences.

Reads ``bench/data/phi_cases.tsv`` (our own synthetic sentences; the identifier of each PHI row
is marked ``[[...]]``). A PHI row is found when a reported hit overlaps its marked span; a clean
row is a false positive when anything is reported. Rows alternate dev / held-out within each
category: the patterns were tuned on the dev rows, the held-out figures are the ones to quote.
When ``../shared`` holds the medical abstracts, 300 of them (seed 0; published abstracts, no
patient identifiers expected) are scanned too, and every hit is listed for review.

    python bench/phi_recall.py [--split dev|heldout|all] [--show-misses] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import time
from collections import defaultdict
from pathlib import Path

from clinsynth.evaluators.privacy import find_phi

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "phi_cases.tsv"
OUT = HERE / "results" / "phi_recall.json"
SPLITS = ("dev", "heldout")
ABSTRACTS = HERE.parent.parent / "shared" / "data" / "medical_abstracts_tc" / "medical_tc_train.csv"


def load(path: Path) -> list[dict[str, object]]:
    """The rows with their category, clean text, marked span (None for clean) and split."""
    rows: list[dict[str, object]] = []
    seen: dict[str, int] = defaultdict(int)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        category, marked = line.split("\t", 1)
        m = re.search(r"\[\[(.+?)\]\]", marked)
        text = marked.replace("[[", "").replace("]]", "")
        span = (m.start(), m.end() - 4) if m else None
        if category != "clean" and span is None:
            raise ValueError(f"PHI row without a [[marked]] span: {line!r}")
        rows.append(
            {"category": category, "text": text, "span": span, "split": SPLITS[seen[category] % 2]}
        )
        seen[category] += 1
    return rows


def evaluate(rows: list[dict[str, object]], show_misses: bool) -> dict[str, object]:
    """Recall per PHI category and false positives on clean rows, with the time per row."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    false_positives: list[dict[str, object]] = []
    clean = 0
    started = time.perf_counter()
    for row in rows:
        text = str(row["text"])
        hits = find_phi(text)
        if row["category"] == "clean":
            clean += 1
            if hits:
                false_positives.append({"text": text, "hits": [(h.kind, h.text) for h in hits]})
            continue
        start, end = row["span"]  # type: ignore[misc]
        ok = any(h.start < end and start < h.end for h in hits)
        counts = found[str(row["category"])]
        counts[0] += ok
        counts[1] += 1
        if show_misses and not ok:
            print(f"MISS {row['category']}: {text!r} -> {[(h.kind, h.text) for h in hits]}")
    elapsed = time.perf_counter() - started
    if show_misses:
        for fp in false_positives:
            print(f"FALSE POSITIVE: {fp}")
    total_found = sum(f for f, _ in found.values())
    total = sum(n for _, n in found.values())
    return {
        "recall": round(total_found / total, 4) if total else None,
        "phi_rows": total,
        "recall_by_category": {k: {"found": f, "of": n} for k, (f, n) in sorted(found.items())},
        "clean_rows": clean,
        "false_positives": len(false_positives),
        "false_positive_rows": false_positives,
        "ms_per_row": round(1000 * elapsed / len(rows), 3) if rows else None,
    }


def scan_abstracts(path: Path, n: int = 300) -> dict[str, object] | None:
    """Hits on ``n`` real abstracts drawn with seed 0, or None without the data set."""
    if not path.exists():
        return None
    with path.open(newline="", encoding="utf-8") as f:
        texts = [row["medical_abstract"] for row in csv.DictReader(f)]
    sample = random.Random(0).sample(texts, n)
    started = time.perf_counter()
    found = [find_phi(text) for text in sample]
    elapsed = time.perf_counter() - started
    chars = sum(map(len, sample))
    return {
        "data_set": "shared/data/medical_abstracts_tc/medical_tc_train.csv",
        "abstracts": n,
        "chars": chars,
        "ms_per_1000_chars": round(1e6 * elapsed / chars, 2),
        "abstracts_with_a_hit": sum(1 for hits in found if hits),
        "hits": [(h.kind, h.text) for hits in found for h in hits],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=(*SPLITS, "all"), default="all")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = load(DATA)
    started = time.perf_counter()
    find_phi("warm-up: load the recognizers once")
    load_s = time.perf_counter() - started
    splits = SPLITS if args.split == "all" else (args.split,)
    result = {
        "data_set": str(DATA.relative_to(HERE.parent)),
        "data_set_rows": len(rows),
        "splits": "rows alternate dev / held-out within each category; patterns tuned on dev",
        "recognizers": "presidio-analyzer pattern recognizers + project patterns, no NER model",
        "first_call_load_s": round(load_s, 2),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        },
        "results": {
            split: evaluate([r for r in rows if r["split"] == split], args.show_misses)
            for split in splits
        },
        "real_abstracts": scan_abstracts(ABSTRACTS),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for split, res in result["results"].items():  # type: ignore[attr-defined]
        print(
            f"{split}: recall {res['recall']} on {res['phi_rows']} PHI rows, "
            f"false positives {res['false_positives']} of {res['clean_rows']} clean rows, "
            f"{res['ms_per_row']} ms/row"
        )
    real = result["real_abstracts"]
    if real:
        print(f"real abstracts: {real['abstracts_with_a_hit']} of {real['abstracts']} with a hit")


if __name__ == "__main__":
    main()
