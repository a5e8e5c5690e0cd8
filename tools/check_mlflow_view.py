"""The documented check of the MLflow landing view: serve the project's store with `mlflow ui`, open the link
`compare` printed in results/results.md in a real headless browser (Debian's chromium), and check that the
page shows every SimCLR and G-SimCLR evaluation run side by side with their test accuracies; saves a
screenshot.

    python tools/check_mlflow_view.py [--results results/results.md] [--screenshot docs/img/mlflow-side-by-side.png]

Needs `chromium` on PATH (apt install chromium); not part of `make test`, which must not need a browser.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PORT = 5000


def landing_link(results: Path) -> str:
    lines = results.read_text().splitlines()
    line = next(line for line in lines if line.startswith("SimCLR and G-SimCLR side by side"))
    return re.findall(r"http://127\.0\.0\.1:5000/\S+", line)[-1]


def serve(store: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{store}", "--port", str(PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=1)
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("mlflow ui did not start within 60 s")


def browse(link: str, screenshot: Path) -> str:
    """The rendered page's DOM after its scripts ran; a screenshot beside it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found (apt install chromium)")
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000"]
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*common, "--window-size=1600,1000", f"--screenshot={screenshot}", link], check=True, capture_output=True
    )
    return subprocess.run([*common, "--dump-dom", link], check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/results.md"))
    parser.add_argument("--store", type=Path, default=Path("mlruns/mlflow.db"))
    parser.add_argument("--screenshot", type=Path, default=Path("docs/img/mlflow-side-by-side.png"))
    args = parser.parse_args()
    link = landing_link(args.results)
    server = serve(args.store.resolve())
    try:
        dom = browse(link, args.screenshot)
    finally:
        server.terminate()
    seeds = sorted(set(re.findall(r"evaluate-(?:g?simclr)-seed(\d+)", dom)))
    shown = {method: sorted(set(re.findall(rf"evaluate-{method}-seed(\d+)", dom))) for method in ("simclr", "gsimclr")}
    accuracies = "test_acc" in dom
    print(f"link: {link}")
    print(f"runs shown: SimCLR seeds {shown['simclr']}, G-SimCLR seeds {shown['gsimclr']}")
    print(f"test accuracies shown: {accuracies}")
    print(f"screenshot: {args.screenshot}")
    if not (seeds and shown["simclr"] == shown["gsimclr"] and accuracies):
        raise SystemExit("the landing view does not show both methods' runs side by side with their accuracies")


if __name__ == "__main__":
    main()
