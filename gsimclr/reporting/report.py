"""results.md: the paper's Tables II and III with the controls, per-seed values, figures, diagnostics and
provenance, in words a reader can act on (a method that does not beat the untrained network is said not to)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from gsimclr.evaluation.stats import paired_difference, summarize
from gsimclr.models.heads import TAPS
from gsimclr.outputs.metrics import ResultRow
from gsimclr.reporting.arm import arm_description
from gsimclr.reporting.diagnostics import diagnostics
from gsimclr.reporting.rows import FINETUNE, LABELS, SeedOutputs, cell_values, method_labels
from gsimclr.reporting.tables import control_table, method_table, paper_figure, per_seed_table
from gsimclr.settings.config import Params
from gsimclr.settings.names import METHODS, PIXELS
from gsimclr.system.machine import hardware

COLLAPSE_SHARE = 0.98
"""A run whose final NT-Xent loss is this close to ln(2B - 1) has collapsed (all embeddings alike)."""


def collapsed_runs(outputs: list[SeedOutputs], batch_size: int, labels: Mapping[str, str] = LABELS) -> list[str]:
    """`method seed N` for every pretraining run that ended at the loss of identical embeddings."""
    chance = math.log(2 * batch_size - 1)
    return [
        f"{labels[m]} seed {o.seed}" for m in METHODS for o in outputs if o.pretrain[m].loss >= COLLAPSE_SHARE * chance
    ]


def collapse_warning(outputs: list[SeedOutputs], batch_size: int, labels: Mapping[str, str] = LABELS) -> list[str]:
    """A warning paragraph naming collapsed pretraining runs (none: no lines)."""
    collapsed = collapsed_runs(outputs, batch_size, labels)
    if not collapsed:
        return []
    return [
        f"**Collapsed pretraining:** {', '.join(collapsed)} ended with an NT-Xent loss within "
        f"{1 - COLLAPSE_SHARE:.0%} of ln(2B − 1) = {math.log(2 * batch_size - 1):.3f}, the loss of identical "
        "embeddings: those representations carry (almost) no information, and the averages below include them. "
        "A lower `pretrain.lr` usually avoids it.",
        "",
    ]


def balanced_section(rows: list[ResultRow], ratio: float, outputs: list[SeedOutputs]) -> list[str]:
    """Mean per-class test accuracy, for long-tailed training splits (plain accuracy hides the tail classes)."""
    supervised = summarize(cell_values(rows)[("supervised", "–")])
    return [
        f"## Balanced accuracy — long-tailed training split (imbalance ratio {ratio:g})",
        "",
        "Mean over classes of the per-class test accuracy (the test split is untouched: where it is balanced, "
        "as in the ImageNet subset, this equals plain accuracy, and the per-class table below is what shows the tail).",
        "",
        *method_table(rows, [*TAPS, FINETUNE], None),
        "",
        f"Fully supervised baseline: {supervised}.",
        "",
        *per_class_section(outputs),
    ]


def per_class_section(outputs: list[SeedOutputs]) -> list[str]:
    """Test accuracy of every class for P3 and fine-tuning, head class first (long-tailed splits keep
    fewer training images of each next class), paired by seed."""
    n_classes = len(outputs[0].evaluation["simclr"].rows["linear_P3"].test_acc_by_class)
    if not n_classes:
        return []  # evaluated before per-class accuracies were recorded
    lines = [
        "Per-class test accuracy (%), class 0 = most training images, each next class fewer:",
        "",
        "| class | SimCLR P3 | G-SimCLR P3 | G-SimCLR − SimCLR (paired) | SimCLR fine-tune | G-SimCLR fine-tune "
        "| G-SimCLR − SimCLR (paired) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in range(n_classes):
        cells = []
        for key in ("linear_P3", "finetune"):
            simclr, guided = ([100 * o.evaluation[m].rows[key].test_acc_by_class[c] for o in outputs] for m in METHODS)
            cells += [
                str(summarize(simclr)),
                str(summarize(guided)),
                paired_difference(guided, simclr).format(signed=True),
            ]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def labelled_images(outputs: list[SeedOutputs], method: str, name: str) -> str:
    """How many labels a row used (training + validation images), the same for every seed of a study."""
    counts = sorted({o.evaluation[method].rows[name].labelled_images or 0 for o in outputs})
    return "/".join(map(str, counts))


@dataclass(frozen=True)
class LabelledImages:
    """How many labelled images (validation included) the supervised reference and the fine-tunes used, as the
    report prints them; the from-scratch control uses the fine-tunes' images."""

    supervised: str
    finetune: str
    from_scratch: str

    @classmethod
    def of(cls, outputs: list[SeedOutputs]) -> LabelledImages:
        return cls(
            labelled_images(outputs, "supervised", "supervised"),
            labelled_images(outputs, "simclr", "finetune"),
            labelled_images(outputs, "random_init", "finetune"),
        )


def controls_section(rows: list[ResultRow], labelled: Optional[LabelledImages]) -> list[str]:
    """Did pretraining learn anything? Each method against the untrained network and raw pixels."""
    images = f"{labelled.from_scratch} labelled images" if labelled else "labelled images as the fine-tunes"
    return [
        "## Controls — did pretraining learn anything?",
        "",
        "The same linear probe on the same network untrained (initialised from the same seed): a method that does not "
        "beat it has learned nothing worth comparing.",
        "",
        *control_table(rows, list(TAPS)),
        "",
        "Raw pixels under the same probe, paired by seed (each seed's validation split chose the pixels' C too):",
        "",
        *control_table(rows, list(TAPS), control=PIXELS),
        "",
        f"Fine-tuning against training the same network from scratch on the same {images}:",
        "",
        *control_table(rows, [FINETUNE]),
        "",
    ]


def introduction(params: Params) -> list[str]:
    """What the numbers are (test accuracy of the validation-selected model, intervals over seeds) and what
    the guided arm did."""
    return [
        "Test accuracy (%) of the model selected on the validation split (carved from the training data): "
        "mean ± 95% confidence interval (Student t) over seeds. The difference is paired by seed; it is called "
        "noise when its interval contains zero. Linear probes: logistic regression (L-BFGS) on standardised "
        "frozen features, C chosen on the validation split from "
        + ", ".join(f"{c:g}" for c in params.evaluate.linear.c_grid)
        + ".",
        "",
        arm_description(params),
        "",
        *(
            [
                f"Pretraining data: the unlabelled pool `{params.data.pool}` (the autoencoder, the pseudo labels and "
                "both arms trained on it); the labelled images serve only the probes, the classifiers, the kNN "
                "monitor and the controls.",
                "",
            ]
            if params.data.pool
            else []
        ),
    ]


def accuracy_sections(params: Params, rows: list[ResultRow], labelled: Optional[LabelledImages]) -> list[str]:
    """Tables II and III with the supervised reference and the controls: what the report says from results.csv
    alone (`labelled`: the label counts, where the runs' metrics are at hand; `pool` has only the tables)."""
    reference = params.data.paper_reference
    cells = cell_values(rows)
    supervised = summarize(cells[("supervised", "–")])
    paper_supervised = f" (paper: {paper_figure(rows[0].paper)})" if reference else ""
    supervised_images = f" ({labelled.supervised} labelled images, validation included)" if labelled else ""
    finetune_images = (
        f"Labelled images each fine-tune used: {labelled.finetune} (its training images plus the validation "
        "images that selected its epoch). The same network trained from scratch on exactly those images"
        if labelled
        else "The same network trained from scratch on exactly the fine-tunes' labelled images"
    )
    return [
        "## Table II — linear evaluation on frozen representations",
        "",
        *method_table(rows, list(TAPS), reference),
        "",
        f"Fully supervised baseline: {supervised}{paper_supervised}{supervised_images}. "
        f"Controls under the same probe: untrained network P3 {summarize(cells[('random_init', 'P3')])}, "
        f"raw pixels {summarize(cells[('pixels', PIXELS)])}.",
        "",
        f"## Table III — fine-tuning with {params.evaluate.finetune_fraction:.0%} of the training labels "
        "(class-stratified)",
        "",
        *method_table(rows, [FINETUNE], reference),
        "",
        f"{finetune_images}: {summarize(cells[('random_init', FINETUNE)])}.",
        "",
        *controls_section(rows, labelled),
    ]


def seeds_title(params: Params, seeds: list[int]) -> str:
    """The report's heading: the dataset and the seeds it pools."""
    return (
        f"# SimCLR vs {method_labels(params.guidance.labels)['gsimclr']} on `{params.data.name}` "
        f"({len(seeds)} seed{'s' if len(seeds) > 1 else ''}: {', '.join(map(str, seeds))})"
    )


def render(
    params: Params,
    outputs: list[SeedOutputs],
    rows: list[ResultRow],
    balanced: list[ResultRow],
    figure_names: list[str],
    landing: str,
) -> str:
    """results.md: Tables II and III in the paper's layout, the controls, per-seed values, figures,
    diagnostics and provenance. `landing`: how to open the MLflow view of the study."""
    seeds = [o.seed for o in outputs]
    out = [
        seeds_title(params, seeds),
        "",
        *introduction(params),
        *collapse_warning(outputs, params.pretrain.batch_size, method_labels(params.guidance.labels)),
        *accuracy_sections(params, rows, LabelledImages.of(outputs)),
        *(balanced_section(balanced, params.data.imbalance_ratio, outputs) if balanced else []),
        "## Per seed",
        "",
        *per_seed_table(rows, seeds),
        "",
        figure_links(figure_names),
        "",
        "## Diagnostics (true labels used only to measure)",
        "",
        *diagnostics(outputs, params),
        "",
        *provenance_section(outputs, landing),
    ]
    return "\n".join(out)


def figure_links(names: list[str]) -> str:
    """Markdown images of the figures beside the report, named after their files."""
    return " ".join(f"![{name.removesuffix('.png').replace('_', ' ')}]({name})" for name in names)


def run_table(records: Sequence[tuple[int, Mapping[str, dict]]], machine: bool = False) -> list[str]:
    """One row per stage run of each seed: its MLflow run, wall time, device and, with `machine`, the hardware its run
    record names (a report whose runs come from more than one machine)."""
    return [
        "| stage | seed | MLflow run | wall time (s) | device |" + " hardware |" * machine,
        "| --- | ---: | --- | ---: | --- |" + " --- |" * machine,
        *[
            f"| {name} | {seed} | `{rec['run_id']}` | {rec['wall_s']} | {rec['device']} |"
            + f" {rec.get('hardware', '')} |" * machine
            for seed, runs in records
            for name, rec in runs.items()
        ],
    ]


def provenance_section(outputs: list[SeedOutputs], landing: str) -> list[str]:
    """Which MLflow run produced each number, how long it took, on which device and machine, and the way into
    MLflow's side-by-side view (`landing`)."""
    unreadable = max((rec.get("unreadable_images", 0) for o in outputs for rec in o.records.values()), default=0)
    left_out = (
        [
            f"{unreadable} image file(s) of the dataset could not be decoded and were left out "
            "(`data.on_unreadable: skip`; their paths: `meta.json` of the prepared dataset).",
            "",
        ]
        if unreadable
        else []
    )
    return [
        "## Provenance",
        "",
        *left_out,
        *run_table([(o.seed, o.records) for o in outputs]),
        "",
        f"Hardware: {hardware()}.",
        "",
        landing,
        "",
    ]
