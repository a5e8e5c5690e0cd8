"""A guided arm trained on its own, reported beside an earlier study's SimCLR arm and controls (`gsimclr pair`).

A new guided arm (an oracle bound, a label-free variant) changes nothing upstream of it: SimCLR, the autoencoder, the
controls and the supervised reference are an earlier study's. On the machine and store of that study DVC's run cache
restores them (`gsimclr study`). Elsewhere -- another machine of the same CPU kind, the SimCLR code path unchanged --
they need not be trained again either: the arm's folder runs only `pretrain --method gsimclr` and `evaluate --method
gsimclr` per seed, and this module pairs each seed's guided rows with the earlier study's SimCLR and control rows of
the same seed, read from its results.csv. Whether the SimCLR code path is unchanged and the CPU kind the same is the
user's claim to make (the golden-metrics test of that kind is the evidence); the report names the machine the arm
ran on and the table it reused. What is checked here: the recipe -- every parameter that shapes SimCLR, the probes
or the controls (`RECIPE`) -- equals the earlier study's, each seed has every cell, and both cite the same paper.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gsimclr.evaluation.stats import summarize
from gsimclr.outputs.metrics import EvaluationMetrics, PretrainMetrics, ResultRow, read_results, write_results
from gsimclr.pipeline.layout import Layout
from gsimclr.reporting.figures import TABLE_FIGURES, draw_table_figures
from gsimclr.reporting.pool import check_complete, check_reference
from gsimclr.reporting.report import accuracy_sections, figure_links, introduction, run_table, seeds_title
from gsimclr.reporting.rows import TABLE_CELLS, method_labels, pooled_metrics, result_rows
from gsimclr.reporting.tables import per_seed_table
from gsimclr.settings.config import Params
from gsimclr.settings.names import Method, Stage
from gsimclr.system.errors import UserError
from gsimclr.system.storage import read_json, write_json, write_text

GUIDED: Method = "gsimclr"
STAGES: tuple[Stage, ...] = ("pretrain", "evaluate")
"""The stages the arm's folder ran for it."""
RECIPE = ("data", "model", "pretrain", "evaluate")
"""The params sections SimCLR's pretraining, the probes and the controls read; `data.root` (where the same images
lie on each machine) is left out."""


@dataclass(frozen=True)
class ArmSeed:
    """What one seed of the guided arm wrote: its evaluation, its last pretraining epoch and the two run records."""

    seed: int
    evaluation: EvaluationMetrics
    pretrain: PretrainMetrics
    records: dict[str, dict]


def read_arm_seed(layout: Layout) -> ArmSeed:
    """The guided arm's metrics and run records of one seed; a missing one is a one-line error."""
    seed = layout.seed
    assert seed is not None, "read_arm_seed needs a per-seed layout"
    return ArmSeed(
        seed,
        EvaluationMetrics.read(layout.metrics("evaluate", GUIDED), f"evaluation of {GUIDED} (seed {seed})"),
        PretrainMetrics.read(layout.metrics("pretrain", GUIDED), f"pretrain metrics of {GUIDED} (seed {seed})"),
        {
            f"{stage} {GUIDED}": read_json(layout.run_record(stage, GUIDED), f"{stage} run record (seed {seed})")
            for stage in STAGES
        },
    )


def flat(section: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"prefix.a.b": 1}`."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        out |= flat(value, f"{prefix}.{key}") if isinstance(value, Mapping) else {f"{prefix}.{key}": value}
    return out


def recipe(params: Params) -> dict[str, Any]:
    """The study's `RECIPE` parameters as `section.key` -> value."""
    out: dict[str, Any] = {}
    for section in RECIPE:
        out |= flat(getattr(params, section).model_dump(), section)
    out.pop("data.root", None)
    return out


def recipe_differences(arm: Params, baseline: Params) -> list[str]:
    """The recipe parameters in which the two studies differ, as `section.key`."""
    mine, theirs = recipe(arm), recipe(baseline)
    return sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))


def paired_rows(params: Params, arm: Sequence[ArmSeed], baseline: Path) -> list[ResultRow]:
    """The arm's guided rows and the baseline's other rows of the same seeds, every cell present once per seed, in
    `compare`'s order (seed by seed, cell by cell)."""
    guided = result_rows(
        {s.seed: {GUIDED: s.evaluation} for s in arm}, params.data.paper_reference, guided_by=params.guidance.labels
    )
    seeds = {s.seed for s in arm}
    reused = [r for r in read_results(baseline) if r.metric == "accuracy" and r.method != GUIDED and r.seed in seeds]
    if not reused:
        raise UserError(f"{baseline} has no accuracy rows of SimCLR or the controls for seeds {sorted(seeds)}")
    rows = guided + reused
    check_complete(rows, {seed: baseline for seed in seeds})
    check_reference(rows, params.data.paper_reference)
    cells = [(method, representation) for _, method, representation, _, _ in TABLE_CELLS]
    return sorted(rows, key=lambda row: (row.seed, cells.index((row.method, row.representation))))


def arm_lines(params: Params, arm: Sequence[ArmSeed]) -> list[str]:
    """The guided arm's own diagnostics at its last pretraining epoch, averaged over seeds (true labels measure)."""
    name = method_labels(params.guidance.labels)[GUIDED]
    last = [s.pretrain for s in arm]
    lines = [f"- Final NT-Xent loss {summarize([m.loss for m in last])}."]
    if all(m.knn_val_acc is not None for m in last):
        lines.append(f"- kNN monitor (validation): {summarize([100 * (m.knn_val_acc or 0.0) for m in last])} %.")
    if all(m.same_class_pairs_per_batch is not None for m in last):
        pairs = summarize([m.same_class_pairs_per_batch or 0.0 for m in last])
        size = params.pretrain.batch_size
        lines.append(f"- Same-class pairs per {name} batch (pretrain.batch_size={size}): {pairs}.")
    if all(m.false_negatives_removed is not None for m in last):
        negatives = summarize([m.same_class_negatives_per_batch or 0.0 for m in last])
        removed = summarize([100 * (m.false_negatives_removed or 0.0) for m in last])
        lines.append(
            f"- Same-class pairs its loss still treats as negatives: {negatives} per batch, {removed} % fewer than "
            "random batches of the same sizes hold in expectation (SimCLR's)."
        )
    if all(m.pseudo_label_nmi is not None for m in last):
        lines.append(f"- NMI of its labels with the classes: {summarize([m.pseudo_label_nmi or 0.0 for m in last])}.")
    return lines


def provenance_lines(arm: Sequence[ArmSeed], baseline: Path, output: Path) -> list[str]:
    """The arm's runs (MLflow run, wall time, device, machine) and the reused table, linked."""
    report = os.path.relpath(baseline.parent / "results.md", output)
    return [
        "## Provenance",
        "",
        *run_table([(s.seed, s.records) for s in arm], machine=True),
        "",
        f"SimCLR, the controls and the supervised reference: the rows of `{baseline}` for the same seeds, not trained "
        f"again (their runs, diagnostics and machine: [{report}]({report})).",
        "",
    ]


def report(params: Params, arm: Sequence[ArmSeed], rows: list[ResultRow], baseline: Path, output: Path) -> str:
    """results.md: the tables and controls `compare` writes, every seed's value, the arm's diagnostics, provenance."""
    seeds = [s.seed for s in arm]
    name = method_labels(params.guidance.labels)[GUIDED]
    return "\n".join(
        [
            seeds_title(params, seeds),
            "",
            *introduction(params),
            f"Paired by `gsimclr pair`: the {name} arm trained in this study's folder; SimCLR, the controls and the "
            f"supervised reference are reused from `{baseline}` (same recipe: {', '.join(RECIPE)} params checked), "
            "paired seed by seed.",
            "",
            *accuracy_sections(params, rows, None),
            "## Per seed",
            "",
            *per_seed_table(rows, seeds),
            "",
            figure_links([f"{figure}.png" for figure in TABLE_FIGURES]),
            "",
            f"## The {name} arm's last pretraining epoch (true labels used only to measure)",
            "",
            *arm_lines(params, arm),
            "",
            *provenance_lines(arm, baseline, output),
        ]
    )


def pair(params: Params, baseline_params: Params, root: Path, baseline: Path, output: Path) -> str:
    """Write results.md, results.csv, metrics.json and the table's figures of the guided arm in `root` (the
    study's seeds) paired with `baseline`'s SimCLR arm and controls into `output`; returns the Markdown."""
    differences = recipe_differences(params, baseline_params)
    if differences:
        raise UserError(f"the arm's recipe is not the baseline study's: {', '.join(differences)} differ")
    if output.resolve() == baseline.parent.resolve():
        raise UserError(f"--output {output} holds the baseline {baseline}: write the paired report to another folder")
    arm = [read_arm_seed(Layout(root).for_seed(seed)) for seed in params.seeds]
    rows = paired_rows(params, arm, baseline)
    output.mkdir(parents=True, exist_ok=True)
    draw_table_figures(rows, output)
    text = report(params, arm, rows, baseline, output)
    write_results(output / "results.csv", rows)
    write_json(output / "metrics.json", pooled_metrics(rows))
    write_text(output / "results.md", text)
    return text
