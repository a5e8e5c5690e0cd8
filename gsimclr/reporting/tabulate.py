"""One table across studies: each study's guided arm against its own SimCLR arm, paired by seed.

`compare` answers "SimCLR vs G-SimCLR" inside one study. Options (a loss, refreshed labels, a long-tailed
split) are separate DVC experiments, each with its own results.csv; this puts them side by side without
copying numbers by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gsimclr.evaluation.stats import paired_difference, summarize, verdict
from gsimclr.outputs.metrics import read_results
from gsimclr.reporting.arm import bound_verdict
from gsimclr.reporting.rows import cells_by_seed
from gsimclr.settings.names import ORACLE_LABEL, PIXELS
from gsimclr.system.errors import UserError

REPRESENTATIONS = ("P1", "P2", "P3", "fine-tune")


def parse_study(spec: str) -> tuple[str, Path]:
    """`LABEL=path/to/results.csv` -> (label, path)."""
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        raise UserError(f"{spec!r}: expected LABEL=path/to/results.csv")
    return label, Path(path)


Cells = dict[tuple[str, str], dict[int, float]]
"""(method, representation) -> {seed: test accuracy}."""


def study_cells(path: Path, metric: str) -> tuple[Cells, bool]:
    """The cells of one metric of one results.csv, and whether its guided arm is the oracle bound."""
    rows = [row for row in read_results(path) if row.metric == metric]
    cells = cells_by_seed(rows)
    if not cells:
        raise UserError(
            f"{path} has no {metric} rows"
            + (" (balanced accuracy is reported for long-tailed runs only)" if metric == "balanced_accuracy" else "")
        )
    return cells, any(row.guided_by == "oracle" for row in rows)


def study_rows(label: str, cells: Cells, representations: Sequence[str], oracle: bool = False) -> list[str]:
    """One table row per representation: SimCLR, the guided arm, their paired difference and the verdict (for the
    oracle bound, how much room perfect labels leave, never a win)."""
    name = f"{label} — {ORACLE_LABEL}" if oracle else label
    lines = []
    for rep in representations:
        simclr, guided = cells.get(("simclr", rep)), cells.get(("gsimclr", rep))
        if simclr is None or guided is None:
            raise UserError(f"study {label!r} has no {rep} results for both methods")
        seeds = sorted(simclr)
        if sorted(guided) != seeds:
            raise UserError(f"study {label!r}: the two methods ran different seeds ({seeds} vs {sorted(guided)})")
        a, b = [guided[s] for s in seeds], [simclr[s] for s in seeds]
        diff = paired_difference(a, b)
        said = bound_verdict(diff) if oracle else verdict(diff, "guided arm", "SimCLR")
        lines.append(
            f"| {name} | {rep} | {len(seeds)} | {summarize(b)} | {summarize(a)} | {diff.format(signed=True)} | {said} |"
        )
    return lines


def control_rows(label: str, cells: Cells, representations: Sequence[str]) -> list[str]:
    """One row per representation the untrained network was probed at (or, for fine-tuning, trained from scratch):
    the control, raw pixels, and each arm's paired margin over the untrained network."""
    pixels = cells.get((PIXELS, PIXELS))
    lines = []
    for rep in representations:
        untrained, simclr, guided = (cells.get((method, rep)) for method in ("random_init", "simclr", "gsimclr"))
        if untrained is None or simclr is None or guided is None:
            continue
        seeds = sorted(untrained)
        base = [untrained[s] for s in seeds]
        margins = [paired_difference([arm[s] for s in seeds], base).format(signed=True) for arm in (simclr, guided)]
        raw = summarize([pixels[s] for s in seeds]) if pixels and rep != "fine-tune" else "–"
        lines.append(f"| {label} | {rep} | {summarize(base)} | {raw} | {margins[0]} | {margins[1]} |")
    return lines


def tabulate(studies: Sequence[str], metric: str = "accuracy", representations: Sequence[str] = REPRESENTATIONS) -> str:
    """Markdown: per study and representation, SimCLR, the study's guided arm, and their paired difference; then,
    where the studies ran them, the controls (the untrained network, raw pixels) and each arm's margin over them."""
    if not studies:
        raise UserError("name at least one study as LABEL=path/to/results.csv")
    lines = [
        "| study | representation | seeds | SimCLR | guided arm | guided − SimCLR (paired) | verdict |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    controls: list[str] = []
    for spec in studies:
        label, path = parse_study(spec)
        cells, oracle = study_cells(path, metric)
        lines += study_rows(label, cells, representations, oracle)
        controls += control_rows(label, cells, representations)
    if controls:
        lines += [
            "",
            "Controls under the same probe (fine-tune: the same network trained from scratch on the same labels):",
            "",
            "| study | representation | untrained network | raw pixels | SimCLR − untrained (paired) "
            "| guided arm − untrained (paired) |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
            *controls,
        ]
    return "\n".join(lines) + "\n"
