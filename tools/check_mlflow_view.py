"""The check of the MLflow views `compare` links to: serve the project's store with `mlflow ui`, render the two links
printed in results/results.md in headless Chromium (Debian: `apt install chromium`) at 1600 x 1000, and check that
every seed's SimCLR and G-SimCLR P3 test accuracy is in the table's first screen and that the charts overlay both
arms' loss and kNN-monitor curves; saves the screenshots the docs show.

    python -m tools.check_mlflow_view [--results results/results.md] [--screenshots docs/img]

`tests/pipeline/test_answer_view.py` runs the same check on a tiny study wherever Chromium is installed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

WINDOW = "1600,1000"
ROW = re.compile(r'role="row" row-index="\d+" row-id="([\w.]+)" style="transform: translateY\((\d+)px\)')
RUN_NAME = re.compile(r">(evaluate-[a-z_]+-seed\d+)<")
P3_CELL = re.compile(
    r'col-id="metrics\.`linear_P3/test_acc`"[^>]*style="left: (\d+)px; width: (\d+)px;">'
    r'<div[^>]*><span[^>]*class="ag-cell-value">([^<]*)<'
)
LEGEND = re.compile(r">((?:g?simclr|random_init|supervised|pixels) \(epoch/[a-z_]+\))<")
FIRST_SCREEN_ROWS_PX = 600
"""Rows whose top is above this offset in the table body are on the first screen at 1600 x 1000 (the body starts
about 360 px down, under the page header, the shared-view banner and the column headers)."""
FIRST_SCREEN_COLUMNS_PX = 500
"""Metric cells that end left of this offset in the scrolling part of the table are on the first screen (it starts
right of the run name and start time, about 640 px from the page's left edge, and ends near 1160 px)."""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise SystemExit("chromium not found (Debian: apt install chromium)")
    return found


def landing_links(text: str) -> tuple[str, str]:
    """The answer's and the curves' MLflow UI links in `compare`'s output or results.md."""
    links = re.findall(r"http://127\.0\.0\.1:\d+/\S+", text)
    curves = [link for link in links if "compareRunsMode=CHART" in link]
    answers = [link for link in links if link not in curves]
    if not (answers and curves):
        raise SystemExit("no MLflow links to check: run `gsimclr compare` first")
    return answers[-1], curves[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(store: str, port: int) -> subprocess.Popen:
    """`mlflow ui` on `store` (a tracking URI), once it answers."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180  # a hang guard: the server starts in seconds on an idle machine
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise SystemExit("mlflow ui did not start within 3 minutes") from None
            time.sleep(1)


RENDERS = 4
"""Headless Chromium's virtual time can run out before the MLflow server has answered the page's requests. A check
renders again, up to this many times, until the page holds what it looks for -- and still fails when it never does."""

COMPOSITE_EVERY_FRAME = "--run-all-compositor-stages-before-draw"
"""The chart cards render only once they are seen in the viewport, which headless Chromium under a virtual-time budget
may never composite: without this flag 5 of 50 dumps of the curves view came back without any chart on a 2-core AMD
EPYC (x86_64-avx512; one core training, the other busy for 30 of the 50), and CI once lost all four tries; with it,
0 of 50 on the same machine and load."""


def render(link: str, screenshot: Path | None = None, ready: Callable[[str], bool] = lambda dom: True) -> str:
    """The page's DOM after its scripts ran, rendered again until `ready(dom)` or `RENDERS` tries (and a screenshot,
    where asked, taken once the DOM was ready)."""
    common = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--virtual-time-budget=30000",
        COMPOSITE_EVERY_FRAME,
        f"--window-size={WINDOW}",
    ]
    for _ in range(RENDERS):
        dom = subprocess.run([*common, "--dump-dom", link], check=True, capture_output=True, text=True, timeout=300)
        if ready(dom.stdout):
            break
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*common, f"--screenshot={screenshot}", link], check=True, capture_output=True, timeout=300)
    return dom.stdout


def rendered_rows(dom: str) -> dict[str, dict]:
    """Run name -> its row's offset, and its P3 cell's right edge and text, as rendered."""
    rows: dict[str, dict] = {}
    matches = list(ROW.finditer(dom))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        chunk = dom[match.end() : following.start() if following else len(dom)]
        row = rows.setdefault(match.group(1), {"top": int(match.group(2))})
        if name := RUN_NAME.search(chunk):
            row["name"] = name.group(1)
        if cell := P3_CELL.search(chunk):
            row["p3_right"], row["p3"] = int(cell.group(1)) + int(cell.group(2)), cell.group(3)
    return {row["name"]: row for row in rows.values() if "name" in row}


def on_first_screen(row: dict) -> bool:
    """Whether a rendered row and its P3 cell are inside the first screen (a row without the cell is not)."""
    return "p3_right" in row and row["top"] < FIRST_SCREEN_ROWS_PX and row["p3_right"] <= FIRST_SCREEN_COLUMNS_PX


def chart_lines(dom: str) -> set[str]:
    """The rendered charts' legend entries, e.g. `simclr (epoch/loss)`: one per method and charted metric."""
    return set(LEGEND.findall(dom))


def missing_curves(dom: str) -> list[str]:
    """The lines the curves view should overlay -- each arm's loss and kNN monitor -- that it does not show."""
    return [
        f"{m} ({c})"
        for c in ("epoch/loss", "epoch/knn_val_acc")
        for m in ("simclr", "gsimclr")
        if f"{m} ({c})" not in chart_lines(dom)
    ]


def shows_rows(dom: str) -> bool:
    """Whether the runs table has rendered its evaluation rows."""
    return any(name.startswith("evaluate-") for name in rendered_rows(dom))


def shows_curves(dom: str) -> bool:
    """Whether the chart view has rendered every curve it should overlay."""
    return not missing_curves(dom)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/results.md"))
    parser.add_argument("--store", type=Path, default=Path("mlruns/mlflow.db"))
    parser.add_argument("--screenshots", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    port = free_port()
    answer, curves = (link.replace(":5000/", f":{port}/") for link in landing_links(args.results.read_text()))
    server = serve(f"sqlite:///{args.store.resolve()}", port)
    try:
        rows = rendered_rows(render(answer, args.screenshots / "mlflow-side-by-side.png", ready=shows_rows))
        missing = missing_curves(render(curves, args.screenshots / "mlflow-curves.png", ready=shows_curves))
    finally:
        server.terminate()
        server.wait()
    arms = {name: row for name, row in rows.items() if re.match(r"evaluate-g?simclr-seed", name)}
    for name, row in sorted(arms.items()):
        print(f"{name}: P3 {row.get('p3', '?')}, {'on' if on_first_screen(row) else 'NOT on'} the first screen")
    print(f"curves: {'every arm and curve overlaid' if not missing else 'missing ' + ', '.join(missing)}")
    print(f"screenshots: {args.screenshots / 'mlflow-side-by-side.png'}, {args.screenshots / 'mlflow-curves.png'}")
    seeds = {re.sub(r".*seed", "", name) for name in arms}
    complete = all(f"evaluate-{m}-seed{s}" in arms for m in ("simclr", "gsimclr") for s in seeds)
    if not (arms and complete and all(on_first_screen(row) for row in arms.values())):
        raise SystemExit("the linked view does not show every seed's SimCLR and G-SimCLR P3 on its first screen")
    if missing:
        raise SystemExit("the linked charts do not overlay both arms' loss and kNN-monitor curves")


if __name__ == "__main__":
    main()
