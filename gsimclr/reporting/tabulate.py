"""One table across studies: each study's guided arm against its own SimCLR arm, paired by seed.

`compare` answers "SimCLR vs G-SimCLR" inside one study. Options (a loss, refreshed labels, a long-tailed
split) are separate DVC experiments, each with its own results.csv; this puts them side by side without
copying numbers by hand, as a table and, where a person would rather look than read, as one forest plot of the
paired differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from matplotlib.figure import Figure

from gsimclr.evaluation.stats import paired_difference, summarize, verdict
from gsimclr.outputs import plots
from gsimclr.outputs.metrics import read_results
from gsimclr.reporting.arm import bound_verdict
from gsimclr.reporting.rows import cells_by_seed
from gsimclr.settings.names import ORACLE_LABEL, PIXELS
from gsimclr.system.errors import UserError

REPRESENTATIONS = ("P1", "P2", "P3", "fine-tune")

Cells = dict[tuple[str, str], dict[int, float]]
"""(method, representation) -> {seed: test accuracy}."""


class Study(NamedTuple):
    """One study's cells of one metric, and whether its guided arm is the oracle bound."""

    label: str
    cells: Cells
    oracle: bool

    @property
    def name(self) -> str:
        """The study's name in every table row and figure: the oracle bound always says what it is."""
        return f"{self.label} — {ORACLE_LABEL}" if self.oracle else self.label

    def paired_arms(self, rep: str) -> tuple[list[float], list[float]]:
        """The guided arm's and SimCLR's accuracies at `rep`, seed by seed (both arms must have run the same
        seeds)."""
        simclr, guided = self.cells.get(("simclr", rep)), self.cells.get(("gsimclr", rep))
        if simclr is None or guided is None:
            raise UserError(f"study {self.label!r} has no {rep} results for both methods")
        seeds = sorted(simclr)
        if sorted(guided) != seeds:
            raise UserError(f"study {self.label!r}: the two methods ran different seeds ({seeds} vs {sorted(guided)})")
        return [guided[s] for s in seeds], [simclr[s] for s in seeds]


def parse_study(spec: str) -> tuple[str, Path]:
    """`LABEL=path/to/results.csv` -> (label, path)."""
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        raise UserError(f"{spec!r}: expected LABEL=path/to/results.csv")
    return label, Path(path)


def read_study(spec: str, metric: str) -> Study:
    """The study a `LABEL=path/to/results.csv` names, reduced to one metric."""
    label, path = parse_study(spec)
    rows = [row for row in read_results(path) if row.metric == metric]
    cells = cells_by_seed(rows)
    if not cells:
        raise UserError(
            f"{path} has no {metric} rows"
            + (" (balanced accuracy is reported for long-tailed runs only)" if metric == "balanced_accuracy" else "")
        )
    return Study(label, cells, any(row.guided_by == "oracle" for row in rows))


def read_studies(specs: Sequence[str], metric: str = "accuracy") -> list[Study]:
    """Every study named on the command line, in order."""
    if not specs:
        raise UserError("name at least one study as LABEL=path/to/results.csv")
    return [read_study(spec, metric) for spec in specs]


def study_rows(study: Study, representations: Sequence[str]) -> list[str]:
    """One table row per representation: SimCLR, the guided arm, their paired difference and the verdict (for the
    oracle bound, how much room perfect labels leave, never a win)."""
    lines = []
    for rep in representations:
        guided, simclr = study.paired_arms(rep)
        diff = paired_difference(guided, simclr)
        said = bound_verdict(diff) if study.oracle else verdict(diff, "guided arm", "SimCLR")
        lines.append(
            f"| {study.name} | {rep} | {len(guided)} | {summarize(simclr)} | {summarize(guided)} "
            f"| {diff.format(signed=True)} | {said} |"
        )
    return lines


def control_rows(study: Study, representations: Sequence[str]) -> list[str]:
    """One row per representation the untrained network was probed at (or, for fine-tuning, trained from scratch):
    the control, raw pixels, and each arm's paired margin over the untrained network."""
    pixels = study.cells.get((PIXELS, PIXELS))
    lines = []
    for rep in representations:
        untrained, simclr, guided = (study.cells.get((method, rep)) for method in ("random_init", "simclr", "gsimclr"))
        if untrained is None or simclr is None or guided is None:
            continue
        seeds = sorted(untrained)
        base = [untrained[s] for s in seeds]
        margins = [paired_difference([arm[s] for s in seeds], base).format(signed=True) for arm in (simclr, guided)]
        raw = summarize([pixels[s] for s in seeds]) if pixels and rep != "fine-tune" else "–"
        lines.append(f"| {study.name} | {rep} | {summarize(base)} | {raw} | {margins[0]} | {margins[1]} |")
    return lines


def tabulate(studies: Sequence[Study], representations: Sequence[str] = REPRESENTATIONS) -> str:
    """Markdown: per study and representation, SimCLR, the study's guided arm, and their paired difference; then,
    where the studies ran them, the controls (the untrained network, raw pixels) and each arm's margin over them."""
    lines = [
        "| study | representation | seeds | SimCLR | guided arm | guided − SimCLR (paired) | verdict |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    controls: list[str] = []
    for study in studies:
        lines += study_rows(study, representations)
        controls += control_rows(study, representations)
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


def differences_figure(
    studies: Sequence[Study], representations: Sequence[str], metric: str = "accuracy", data: str = ""
) -> Figure:
    """The table's paired differences as one forest plot: per study and representation, guided arm − its own SimCLR
    arm, mean and 95 % interval over the seeds, so whether an interval leaves zero is seen at once. `data` names
    the dataset in the title (a figure copied out of its report keeps saying what it measured)."""
    rows = []
    for study in studies:
        for rep in representations:
            diff = paired_difference(*study.paired_arms(rep))
            label = f"{study.label}, {rep}" + (f"\n{ORACLE_LABEL}" if study.oracle else "")
            rows.append((label, diff.mean, diff.half_width))
    measure = "balanced accuracy" if metric == "balanced_accuracy" else "accuracy"
    title = f"guided arm − SimCLR, paired by seed (test {measure})"
    return plots.forest(rows, f"{data}: {title}" if data else title)
