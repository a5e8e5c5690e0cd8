"""The report's per-seed accuracy figure, drawn from results rows alone (so `compare` and `pool` draw the same)."""

from __future__ import annotations

from matplotlib.figure import Figure

from gsimclr.models.heads import TAPS
from gsimclr.outputs import plots
from gsimclr.outputs.metrics import ResultRow
from gsimclr.reporting.rows import FINETUNE, LABELS, cell_values
from gsimclr.settings.names import METHODS, PIXELS


def accuracy_by_seed(rows: list[ResultRow]) -> Figure:
    """Every seed's test accuracy per method and representation, with the supervised reference and raw pixels."""
    cells = cell_values(rows)
    return plots.accuracy_by_seed(
        {LABELS[m]: {rep: cells[(m, rep)] for rep in (*TAPS, FINETUNE)} for m in (*METHODS, "random_init")},
        baselines=[("supervised", cells[("supervised", "–")]), ("raw pixels, linear", cells[("pixels", PIXELS)])],
    )
