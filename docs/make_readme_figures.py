"""Make the README's report screenshots and ``inspect --sample 3`` output from a stub run.

Scripted replies (``qa_responder`` in mode ``mixed``: accepted, revised, relabelled and
rejected items), the demo corpus, hashing embedder; nothing here is a model's output.
Needs headless Chromium (Debian: ``apt-get install chromium``) and Pillow.

    python docs/make_readme_figures.py WORKDIR
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    from PIL import Image

    from clinsynth.testing.qa_responder import make_responder
    from clinsynth.testing.stub_server import StubServer

    work = Path(sys.argv[1]).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "clinsynth.cli"]
    with StubServer(make_responder("mixed")) as stub:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLINSYNTH_")}
        env.update(
            CLINSYNTH_BASE_URL=stub.base_url,
            CLINSYNTH_API_KEY="stub",
            CLINSYNTH_MODEL="stub-model",
            CLINSYNTH_EMBEDDER="hashing",
            CLINSYNTH_STORE=str(work / "store"),
            PYTHONPATH=str(REPO),
        )

        def run(*args: str) -> str:
            res = subprocess.run([*cli, *args], env=env, cwd=work, capture_output=True, text=True)
            assert res.returncode == 0, res.stderr
            return res.stdout

        run("ingest", str(REPO / "clinsynth" / "data" / "demo_corpus"), "--reset")
        run("generate", "-n", "8", "--max-attempts", "1", "--out", "runs/stub", "--overwrite")
    (work / "inspect_sample3.txt").write_text(run("inspect", "runs/stub", "--sample", "3"))
    run("report", "runs/stub")
    full = work / "report_full.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1150,7000",
            f"--screenshot={full}",
            (work / "runs" / "stub" / "report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
    )
    page = Image.open(full).convert("RGB")
    start = int(sys.argv[2]) if len(sys.argv) > 2 else 2760  # where "Example items" begins
    crops = {
        "report.png": (0, 0, 1150, 1600),
        "report-examples.png": (0, start, 1150, start + 1300),
    }
    for name, box in crops.items():
        shot = page.crop(box).quantize(colors=64)
        shot.save(REPO / "docs" / name, optimize=True)
        print(name, (REPO / "docs" / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
