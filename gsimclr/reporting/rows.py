"""The study's numbers in long format: one row per (table, method, representation, seed), as results.csv
holds them, and the headline numbers pooled over seeds (results/metrics.json).

Every figure is a mean over the study's seeds with a 95 % Student-t interval; the G-SimCLR − SimCLR
difference is paired by seed (same data split and initialisation seed for both methods).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Optional

from gsimclr.evaluation.stats import Summary, paired_difference, summarize
from gsimclr.models.heads import TAPS
from gsimclr.outputs.metrics import ClusterMetrics, EvaluationMetrics, PretrainMetrics, ResultRow
from gsimclr.reporting.paper import PAPER_RESULTS
from gsimclr.settings.names import METHOD_NAMES, METHODS, ORACLE_LABEL, PIXELS

LABELS: dict[str, str] = {
    **METHOD_NAMES,
    "supervised": "Fully supervised",
    "random_init": "Random init (untrained)",
    "pixels": "Raw pixels",
}
FINETUNE = "fine-tune"
"""Representation name of the Table III rows (the whole backbone, trained on the labelled fraction); for
`random_init` it is training from scratch on the same labelled images."""


def method_labels(guided_by: str) -> dict[str, str]:
    """How tables, figures and sentences name each method's rows; `guided_by` is the guided arm's label source, and
    an arm that read the true labels is named as the oracle bound everywhere, never as G-SimCLR."""
    return LABELS | ({"gsimclr": ORACLE_LABEL} if guided_by == "oracle" else {})


def labels_of_rows(rows: Iterable[ResultRow]) -> dict[str, str]:
    """`method_labels` for a table read back from results.csv, whose guided rows say where their labels came from."""
    return method_labels("oracle" if any(row.guided_by == "oracle" for row in rows) else "")


TABLE_CELLS: list[tuple[str, str, str, str, str]] = [
    ("II", "supervised", "–", "supervised", "supervised"),
    *[("II", m, tap, f"linear_{tap}", f"{m}/linear_{tap}") for m in (*METHODS, "random_init") for tap in TAPS],
    ("II", "pixels", PIXELS, f"linear_{PIXELS}", ""),
    *[("III", m, FINETUNE, "finetune", f"{m}/finetune") for m in (*METHODS, "random_init")],
]
"""Every cell of Tables II and III with its controls, one row per seed in results.csv: (table, method,
representation, key of the evaluation's metrics, key of the paper's figure)."""


@dataclass(frozen=True)
class SeedOutputs:
    """Everything one seed's stages wrote that the comparison reads."""

    seed: int
    evaluation: Mapping[str, EvaluationMetrics]
    cluster: ClusterMetrics
    pretrain: Mapping[str, PretrainMetrics]
    records: dict[str, dict]


def result_rows(
    evaluations: Mapping[int, Mapping[str, EvaluationMetrics]],
    reference: Optional[str],
    balanced: bool = False,
    guided_by: str = "autoencoder",
) -> list[ResultRow]:
    """Long format: one row per (table, method, representation, seed) with our test accuracy in % and the paper's.

    `evaluations`: seed -> method -> its evaluation; the rows are those of the methods given (`compare`: all of
    them; `pair`: the guided arm only).
    `balanced`: mean per-class accuracy instead (long-tailed training splits); the paper has no such figure.
    `guided_by`: the G-SimCLR arm's label source, written on its rows unless it is the paper's (`oracle` marks the
    upper bound).
    """
    paper = {} if balanced else PAPER_RESULTS.get(reference or "", {})
    return [
        ResultRow(
            table=table,
            metric="balanced_accuracy" if balanced else "accuracy",
            method=method,
            representation=representation,
            seed=seed,
            test_acc=scores.test_balanced_acc if balanced else scores.test_acc,
            paper=paper[paper_key] / 100 if paper_key in paper else None,  # the paper prints percent
            guided_by=guided_by if method == "gsimclr" and guided_by != "autoencoder" else "",
        )
        for seed, evaluation in evaluations.items()
        for table, method, representation, key, paper_key in TABLE_CELLS
        if method in evaluation
        for scores in [evaluation[method].rows[key]]
    ]


def cells_by_seed(rows: Iterable[ResultRow], scale: float = 100.0) -> dict[tuple[str, str], dict[int, float]]:
    """(method, representation) -> {seed: test accuracy}, in percent for the tables and figures (`scale=1`:
    the stored fractions). Keyed by seed so that two arms are paired seed by seed, never by position."""
    cells: dict[tuple[str, str], dict[int, float]] = {}
    for row in rows:
        cells.setdefault((row.method, row.representation), {})[row.seed] = scale * row.test_acc
    return cells


def cell_values(rows: list[ResultRow], scale: float = 100.0) -> dict[tuple[str, str], list[float]]:
    """(method, representation) -> test accuracies in seed order (one study: every cell has the same seeds)."""
    return {key: [by_seed[s] for s in sorted(by_seed)] for key, by_seed in cells_by_seed(rows, scale).items()}


REPRESENTATION_KEYS = {"–": "", "fine-tune": "finetune/"}
"""Metric-key segment of a table representation (`P1/`, ..., `finetune/`; nothing for the supervised row)."""


def _cell_key(method: str, representation: str) -> str:
    return f"{method}/{REPRESENTATION_KEYS.get(representation, f'{representation}/')}test_acc"


def _summary(key: str, summary: Summary) -> dict[str, float]:
    """`key/mean` and, with two seeds or more, `key/ci95` (the 95 % half-width)."""
    out = {f"{key}/mean": summary.mean}
    return out if math.isnan(summary.half_width) else out | {f"{key}/ci95": summary.half_width}


def pooled_metrics(rows: list[ResultRow], prefix: str = "") -> dict[str, float]:
    """The study's headline numbers as fractions: every cell's mean and 95 % half-width over seeds, the
    paired G-SimCLR − SimCLR difference and each method's paired margins over the untrained network and (linear
    probes) raw pixels, per representation. Written to results/metrics.json (DVC) and logged on the study's MLflow
    run."""
    cells = cell_values(rows, scale=1.0)
    metrics: dict[str, float] = {}
    for (method, rep), values in cells.items():
        metrics |= _summary(prefix + _cell_key(method, rep), summarize(values))
    for rep in (*TAPS, FINETUNE):
        simclr, guided = cells[("simclr", rep)], cells[("gsimclr", rep)]
        metrics |= _summary(prefix + _cell_key("gsimclr_minus_simclr", rep), paired_difference(guided, simclr))
        controls = {"random_init": cells[("random_init", rep)]}
        if rep in TAPS:
            controls["pixels"] = cells[("pixels", PIXELS)]
        for method, values in (("simclr", simclr), ("gsimclr", guided)):
            for control, baseline in controls.items():
                margin = paired_difference(values, baseline)
                metrics |= _summary(prefix + _cell_key(f"{method}_minus_{control}", rep), margin)
    return metrics
