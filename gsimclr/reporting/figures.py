"""The report's figures drawn from its results rows alone -- accuracy by seed, and the paired differences as a
forest plot -- so that `compare`, `pool` and `gsimclr figures` (which redraws them for a committed report) draw
the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from matplotlib.figure import Figure

from gsimclr.evaluation.stats import paired_difference
from gsimclr.models.heads import TAPS
from gsimclr.outputs import plots
from gsimclr.outputs.metrics import ResultRow
from gsimclr.reporting.rows import FINETUNE, cell_values, labels_of_rows
from gsimclr.settings.names import METHODS, PIXELS
from gsimclr.system.errors import UserError


def arms(cells: dict[tuple[str, str], list[float]]) -> list[str]:
    """The arms of `METHODS` and the untrained control that the table holds at every representation (reports
    from before the controls hold none of the control's rows); a table with neither arm is a `UserError`."""
    present = [m for m in (*METHODS, "random_init") if all((m, rep) in cells for rep in (*TAPS, FINETUNE))]
    if not set(METHODS) & set(present):
        raise UserError("the table holds neither SimCLR's nor G-SimCLR's rows at every representation")
    return present


def accuracy_by_seed(rows: list[ResultRow]) -> Figure:
    """Every seed's test accuracy per method and representation, with the supervised reference and raw pixels
    where the table holds them."""
    cells, labels = cell_values(rows), labels_of_rows(rows)
    baselines = [("supervised", ("supervised", "–")), ("raw pixels, linear", ("pixels", PIXELS))]
    return plots.accuracy_by_seed(
        {labels[m]: {rep: cells[(m, rep)] for rep in (*TAPS, FINETUNE)} for m in arms(cells)},
        baselines=[(name, cells[key]) for name, key in baselines if key in cells],
    )


def paired_differences(rows: list[ResultRow]) -> Figure:
    """G-SimCLR − SimCLR and each arm − the untrained network, by representation: paired by seed, as the tables'
    intervals are (the oracle bound's arm is named as one, never as a method)."""
    cells = cell_values(rows)
    guided = labels_of_rows(rows)["gsimclr"]
    pairs = [
        (f"{guided} − SimCLR", "gsimclr", "simclr"),
        ("SimCLR − untrained", "simclr", "random_init"),
        (f"{guided} − untrained", "gsimclr", "random_init"),
    ]
    present = arms(cells)
    forest_rows = []
    for label, treatment, control in pairs:
        if treatment not in present or control not in present:
            continue
        for rep in (*TAPS, FINETUNE):
            difference = paired_difference(cells[(treatment, rep)], cells[(control, rep)])
            forest_rows.append((f"{label}, {rep}", difference.mean, difference.half_width))
    seeds = len(next(iter(cells.values())))
    return plots.forest(forest_rows, f"paired differences over {seeds} seed{'s' if seeds > 1 else ''}")


TableFigure = Literal["accuracy_by_seed", "paired_differences"]
TABLE_FIGURES: dict[TableFigure, Callable[[list[ResultRow]], Figure]] = {
    "accuracy_by_seed": accuracy_by_seed,
    "paired_differences": paired_differences,
}
"""The figures a report draws from its table alone, by file stem."""


def draw_table_figures(rows: list[ResultRow], folder: Path) -> list[Path]:
    """Write every `TABLE_FIGURES` PNG into `folder`; returns their paths."""
    written = []
    for name, draw in TABLE_FIGURES.items():
        figure = draw(rows)
        try:
            plots.save_png(figure, folder / f"{name}.png")
        finally:
            plots.close(figure)
        written.append(folder / f"{name}.png")
    return written
