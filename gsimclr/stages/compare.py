"""Stage 5: SimCLR vs G-SimCLR (and supervised) over all seeds, in the layout of the paper's Tables II/III.

Every figure is a mean over the study's seeds with a 95% Student-t interval; the G-SimCLR − SimCLR
difference is paired by seed (same data split and initialisation seed for both methods).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from gsimclr.evaluation.stats import Summary, paired_difference, summarize, verdict
from gsimclr.models.heads import TAPS
from gsimclr.outputs import plots
from gsimclr.outputs.metrics import ClusterMetrics, EvaluationMetrics, PretrainMetrics, ResultRow, write_results
from gsimclr.pipeline.layout import Layout
from gsimclr.pipeline.tracking import StageRun, link_runs, stage_run, ui_hint
from gsimclr.reporting.paper import PAPER_RESULTS
from gsimclr.settings.names import EVAL_METHODS, METHODS, PIXELS, EvalMethod, Stage
from gsimclr.stages.context import StageContext
from gsimclr.system.machine import hardware
from gsimclr.system.storage import read_json, write_json, write_text

STAGE = "compare"
LABELS = {
    "simclr": "SimCLR",
    "gsimclr": "G-SimCLR",
    "supervised": "Fully supervised",
    "random_init": "Random init (untrained)",
    "pixels": "Raw pixels",
}
FINETUNE = "fine-tune"
"""Representation name of the Table III rows (the whole backbone, trained on the labelled fraction); for
`random_init` it is training from scratch on the same labelled images."""


@dataclass(frozen=True)
class SeedOutputs:
    """Everything one seed's stages wrote that the comparison reads."""

    seed: int
    evaluation: Mapping[str, EvaluationMetrics]
    cluster: ClusterMetrics
    pretrain: Mapping[str, PretrainMetrics]
    records: dict[str, dict]


def read_seed(layout: Layout) -> SeedOutputs:
    """Every metrics file and run record one seed's stages wrote; a missing one is a one-line error."""
    seed = layout.seed
    assert seed is not None, "read_seed needs a per-seed layout"
    evaluation: dict[str, EvaluationMetrics] = {
        m: EvaluationMetrics.read(layout.metrics("evaluate", m), f"evaluation of {m} (seed {seed})")
        for m in EVAL_METHODS
    }
    pretrain: dict[str, PretrainMetrics] = {
        m: PretrainMetrics.read(layout.metrics("pretrain", m), f"pretrain metrics of {m} (seed {seed})")
        for m in METHODS
    }
    record_names: list[tuple[Stage, Optional[EvalMethod]]] = [
        ("autoencoder", None),
        ("cluster", None),
        *[("pretrain", m) for m in METHODS],
        *[("evaluate", m) for m in EVAL_METHODS],
    ]
    records = {
        " ".join(filter(None, (stage, method))): read_json(
            layout.run_record(stage, method), f"{stage} run record (seed {seed})"
        )
        for stage, method in record_names
    }
    cluster = ClusterMetrics.read(layout.metrics("cluster"), f"cluster metrics (seed {seed})")
    return SeedOutputs(seed, evaluation, cluster, pretrain, records)


def result_rows(outputs: list[SeedOutputs], reference: Optional[str], balanced: bool = False) -> list[ResultRow]:
    """Long format: one row per (table, method, representation, seed) with our test accuracy in % and the paper's.

    `balanced`: mean per-class accuracy instead (long-tailed training splits); the paper has no such figure.
    """
    paper = {} if balanced else PAPER_RESULTS.get(reference or "", {})
    cells = [
        ("II", "supervised", "–", "supervised", "supervised"),
        *[("II", m, tap, f"linear_{tap}", f"{m}/linear_{tap}") for m in (*METHODS, "random_init") for tap in TAPS],
        ("II", "pixels", PIXELS, f"linear_{PIXELS}", ""),
        *[("III", m, FINETUNE, "finetune", f"{m}/finetune") for m in (*METHODS, "random_init")],
    ]
    return [
        ResultRow(
            table=table,
            metric="balanced_accuracy" if balanced else "accuracy",
            method=method,
            representation=representation,
            seed=out.seed,
            test_acc=scores.test_balanced_acc if balanced else scores.test_acc,
            paper=paper[paper_key] / 100 if paper_key in paper else None,  # the paper prints percent
        )
        for out in outputs
        for table, method, representation, key, paper_key in cells
        for scores in [out.evaluation[method].rows[key]]
    ]


def cell_values(rows: list[ResultRow], scale: float = 100.0) -> dict[tuple[str, str], list[float]]:
    """(method, representation) -> test accuracies in seed order, in percent for the tables and figures
    (`scale=1`: the stored fractions)."""
    cells: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        cells.setdefault((row.method, row.representation), []).append(scale * row.test_acc)
    return cells


def _fmt(value: Optional[float]) -> str:
    """A paper figure (a fraction) in percent, as the tables print it."""
    return "–" if value is None else f"{100 * value:.2f}"


def method_table(rows: list[ResultRow], representations: list[str], reference: Optional[str]) -> list[str]:
    """SimCLR and G-SimCLR per representation, their paired difference with a verdict, and the paper's pair."""
    cells = cell_values(rows)
    paper = {(r.method, r.representation): r.paper for r in rows}
    head = "| representation | SimCLR | G-SimCLR | G-SimCLR − SimCLR (paired) | verdict |"
    rule = "| --- | ---: | ---: | ---: | --- |"
    if reference:
        head += " paper SimCLR | paper G-SimCLR |"
        rule += " ---: | ---: |"
    lines = [head, rule]
    for rep in representations:
        simclr, gsimclr = cells[("simclr", rep)], cells[("gsimclr", rep)]
        diff = paired_difference(gsimclr, simclr)
        said = verdict(diff, "G-SimCLR", "SimCLR")
        line = f"| {rep} | {summarize(simclr)} | {summarize(gsimclr)} | {diff.format(signed=True)} | {said} |"
        if reference:
            line += f" {_fmt(paper[('simclr', rep)])} | {_fmt(paper[('gsimclr', rep)])} |"
        lines.append(line)
    return lines


def control_table(rows: list[ResultRow], representations: list[str]) -> list[str]:
    """Each method's paired margin over the untrained network under the same probe (or training), and
    whether it beats it."""
    cells = cell_values(rows)
    lines = [
        f"| representation | {LABELS['random_init']} | "
        "SimCLR − control (paired) | verdict | G-SimCLR − control (paired) | verdict |",
        "| --- | ---: | ---: | --- | ---: | --- |",
    ]
    for rep in representations:
        base = cells[("random_init", rep)]
        line = f"| {rep} | {summarize(base)} |"
        for method in METHODS:
            margin = paired_difference(cells[(method, rep)], base)
            line += f" {margin.format(signed=True)} | {beats(margin, LABELS[method])} |"
        lines.append(line)
    return lines


def beats(margin: Summary, method: str) -> str:
    """Plain words for a method's paired margin over a control."""
    if margin.n == 1:
        return "one seed: cannot tell"
    if margin.excludes_zero and margin.mean > 0:
        return f"{method} beats it"
    if margin.excludes_zero:
        return f"**{method} is worse than the control**"
    return f"**{method} does not beat it** (interval contains 0)"


def per_seed_table(rows: list[ResultRow], seeds: list[int]) -> list[str]:
    """Every cell of the tables for every seed: the spread behind each interval."""
    cells = cell_values(rows)
    lines = [
        "| method | representation | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "| --- | --- |" + " ---: |" * len(seeds),
    ]
    lines += [
        f"| {LABELS[m]} | {'from scratch' if (m, rep) == ('random_init', FINETUNE) else rep} | "
        + " | ".join(f"{v:.2f}" for v in values)
        + " |"
        for (m, rep), values in cells.items()
    ]
    return lines


COLLAPSE_SHARE = 0.98
"""A run whose final NT-Xent loss is this close to ln(2B - 1) has collapsed (all embeddings alike)."""


def collapsed_runs(outputs: list[SeedOutputs], batch_size: int) -> list[str]:
    """`method seed N` for every pretraining run that ended at the loss of identical embeddings."""
    chance = math.log(2 * batch_size - 1)
    return [
        f"{LABELS[m]} seed {o.seed}" for m in METHODS for o in outputs if o.pretrain[m].loss >= COLLAPSE_SHARE * chance
    ]


def collapse_warning(outputs: list[SeedOutputs], batch_size: int) -> list[str]:
    """A warning paragraph naming collapsed pretraining runs (none: no lines)."""
    collapsed = collapsed_runs(outputs, batch_size)
    if not collapsed:
        return []
    return [
        f"**Collapsed pretraining:** {', '.join(collapsed)} ended with an NT-Xent loss within "
        f"{1 - COLLAPSE_SHARE:.0%} of ln(2B − 1) = {math.log(2 * batch_size - 1):.3f}, the loss of identical "
        "embeddings: those representations carry (almost) no information, and the averages below include them. "
        "A lower `pretrain.lr` usually avoids it.",
        "",
    ]


def diagnostics(outputs: list[SeedOutputs], params) -> list[str]:
    """Pseudo-label quality and false negatives per batch, averaged over seeds (true labels only measure)."""

    def mean(values) -> Summary:
        return summarize(list(values))

    cluster = {
        key: mean(getattr(o.cluster, key) for o in outputs) for key in ("nmi", "ari", "purity", "size_min", "size_max")
    }
    random_pairs = mean(o.pretrain["simclr"].same_class_pairs_per_batch for o in outputs)
    guided_pairs = mean(o.pretrain["gsimclr"].same_class_pairs_per_batch for o in outputs)
    floor = outputs[0].cluster.min_same_class_pairs
    removable = random_pairs.mean - floor
    removed = f"{(random_pairs.mean - guided_pairs.mean) / removable:.0%}" if removable > 0 else "n/a"
    distinct = mean(o.pretrain["gsimclr"].distinct_pseudo_labels_per_batch or 0.0 for o in outputs)
    random_distinct = mean(o.cluster.random_distinct_pseudo_labels for o in outputs)
    losses = {m: mean(o.pretrain[m].loss for o in outputs) for m in METHODS}
    refreshed = []
    if params.guidance.refresh_every and all(o.pretrain["gsimclr"].pseudo_label_nmi is not None for o in outputs):
        nmi = mean(o.pretrain["gsimclr"].pseudo_label_nmi or 0.0 for o in outputs)
        refreshed = [
            f"- Pseudo labels re-clustered from the model: NMI {nmi} at the last pretraining epoch "
            f"(the initial ones above: {cluster['nmi'].mean:.3f})."
        ]
    return [
        f"- Pseudo labels (k={params.cluster.k}): NMI {cluster['nmi'].mean:.3f}, ARI {cluster['ari'].mean:.3f}, "
        f"purity {cluster['purity'].mean:.3f}; cluster sizes {cluster['size_min'].mean:.0f}–"
        f"{cluster['size_max'].mean:.0f} (means over seeds).",
        f"- Same-class pairs per batch (pretrain.batch_size={params.pretrain.batch_size}, last pretraining epoch): "
        f"SimCLR {random_pairs}, G-SimCLR {guided_pairs}; the fewest any partition allows is {floor:.1f}, "
        f"so guidance removed {removed} of the false negatives perfect labels could remove.",
        *refreshed,
        f"- Distinct pseudo labels per G-SimCLR batch: {distinct} "
        f"(random batches of the same size: {random_distinct}).",
        f"- Final NT-Xent loss: SimCLR {losses['simclr']}, G-SimCLR {losses['gsimclr']}.",
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


LOSS_WORDS = {
    "keep": "NT-Xent (same-cluster images stay negatives, as the paper)",
    "cancel": "NT-Xent without same-cluster negatives (cancelled)",
    "attract": "NT-Xent with same-cluster images as extra positives (attracted)",
}


def arm_description(params) -> str:
    """What the guided arm of this study did, so a results.md of an option study says which option it is."""
    g, c = params.guidance, params.cluster
    loss = (
        f"debiased NT-Xent (tau_plus={g.tau_plus:g})"
        if g.false_negatives == "debiased"
        else LOSS_WORDS[g.false_negatives]
    )
    labels = f"k-means (k={c.k}) on {'raw pixels' if c.features == 'pixels' else 'autoencoder features'}"
    if g.refresh_every:
        labels += f", re-clustered from the model's own embeddings every {g.refresh_every} epochs"
    split = (
        f" Training split long-tailed (imbalance ratio {params.data.imbalance_ratio:g})."
        if params.data.imbalance_ratio > 1
        else ""
    )
    return f"G-SimCLR arm: {g.batches} batches, {loss}; pseudo labels from {labels}.{split}"


def labelled_images(outputs: list[SeedOutputs], method: str, name: str) -> str:
    """How many labels a row used (training + validation images), the same for every seed of a study."""
    counts = sorted({o.evaluation[method].rows[name].labelled_images or 0 for o in outputs})
    return "/".join(map(str, counts))


def controls_section(rows: list[ResultRow], outputs: list[SeedOutputs]) -> list[str]:
    """Did pretraining learn anything? Each method against the untrained network and raw pixels."""
    cells = cell_values(rows)
    return [
        "## Controls — did pretraining learn anything?",
        "",
        f"The same linear probe on the same network untrained (initialised from the same seed): a method that does not "
        "beat it has learned nothing worth comparing. Raw pixels under the same probe: "
        f"{summarize(cells[('pixels', PIXELS)])}.",
        "",
        *control_table(rows, list(TAPS)),
        "",
        f"Fine-tuning against training the same network from scratch on the same "
        f"{labelled_images(outputs, 'random_init', 'finetune')} labelled images:",
        "",
        *control_table(rows, [FINETUNE]),
        "",
    ]


def render(
    ctx: StageContext,
    outputs: list[SeedOutputs],
    rows: list[ResultRow],
    balanced: list[ResultRow],
    figure_names: list[str],
    experiment_id: Optional[str] = None,
) -> str:
    """results.md: Tables II and III in the paper's layout, the controls, per-seed values, figures,
    diagnostics and provenance."""
    params, reference = ctx.params, ctx.params.data.paper_reference
    seeds = [o.seed for o in outputs]
    cells = cell_values(rows)
    supervised = summarize(cells[("supervised", "–")])
    paper_supervised = f" (paper: {_fmt(rows[0].paper)})" if reference else ""
    out = [
        f"# SimCLR vs G-SimCLR on `{params.data.name}` "
        f"({len(seeds)} seed{'s' if len(seeds) > 1 else ''}: {', '.join(map(str, seeds))})",
        "",
        "Test accuracy (%) of the model selected on the validation split (carved from the training data): "
        "mean ± 95% confidence interval (Student t) over seeds. The difference is paired by seed; it is called "
        "noise when its interval contains zero. Linear probes: logistic regression (L-BFGS) on standardised "
        "frozen features, C chosen on the validation split from "
        + ", ".join(f"{c:g}" for c in params.evaluate.linear.c_grid)
        + ".",
        "",
        arm_description(params),
        "",
        *collapse_warning(outputs, params.pretrain.batch_size),
        "## Table II — linear evaluation on frozen representations",
        "",
        *method_table(rows, list(TAPS), reference),
        "",
        f"Fully supervised baseline: {supervised}{paper_supervised} "
        f"({labelled_images(outputs, 'supervised', 'supervised')} labelled images, validation included). "
        f"Controls under the same probe: untrained network P3 {summarize(cells[('random_init', 'P3')])}, "
        f"raw pixels {summarize(cells[('pixels', PIXELS)])}.",
        "",
        f"## Table III — fine-tuning with {params.evaluate.finetune_fraction:.0%} of the training labels "
        "(class-stratified)",
        "",
        *method_table(rows, [FINETUNE], reference),
        "",
        f"Labelled images each fine-tune used: {labelled_images(outputs, 'simclr', 'finetune')} (its training "
        f"images plus the validation images that selected its epoch). The same network trained from scratch on "
        f"exactly those images: {summarize(cells[('random_init', FINETUNE)])}.",
        "",
        *controls_section(rows, outputs),
        *(balanced_section(balanced, params.data.imbalance_ratio, outputs) if balanced else []),
        "## Per seed",
        "",
        *per_seed_table(rows, seeds),
        "",
        " ".join(f"![{name.removesuffix('.png').replace('_', ' ')}]({name})" for name in figure_names),
        "",
        "## Diagnostics (true labels used only to measure)",
        "",
        *diagnostics(outputs, params),
        "",
        *provenance_section(outputs, experiment_id),
    ]
    return "\n".join(out)


def provenance_section(outputs: list[SeedOutputs], experiment_id: Optional[str]) -> list[str]:
    """Which MLflow run produced each number, how long it took, on which device and machine."""
    return [
        "## Provenance",
        "",
        "| stage | seed | MLflow run | wall time (s) | device |",
        "| --- | ---: | --- | ---: | --- |",
        *[
            f"| {name} | {o.seed} | `{rec['run_id']}` | {rec['wall_s']} | {rec['device']} |"
            for o in outputs
            for name, rec in o.records.items()
        ],
        "",
        f"Hardware: {hardware()}.",
        "",
        f"Compare the runs in the MLflow UI: {ui_hint(experiment_id)}",
        "",
    ]


def _curve(path, column: str) -> tuple[list[int], list[float]]:
    with open(path, newline="") as handle:
        records = list(csv.DictReader(handle))
    return [int(r["epoch"]) for r in records], [float(r[column]) for r in records]


def figures(root: Layout, outputs: list[SeedOutputs], rows: list[ResultRow], tracker: StageRun) -> list[str]:
    """accuracy_by_seed.png, pretrain_loss.png and, when pretraining ran the kNN monitor, knn_monitor.png;
    returns the names of those written."""
    cells = cell_values(rows)
    tracker.publish_figure(
        plots.accuracy_by_seed(
            {LABELS[m]: {rep: cells[(m, rep)] for rep in (*TAPS, FINETUNE)} for m in (*METHODS, "random_init")},
            baselines=[("supervised", cells[("supervised", "–")]), ("raw pixels, linear", cells[("pixels", PIXELS)])],
        ),
        root.result_figure("accuracy_by_seed"),
    )
    curves = {
        LABELS[m]: [_curve(root.for_seed(o.seed).pretrain_loss(m, "csv"), f"{m}_loss") for o in outputs]
        for m in METHODS
    }
    tracker.publish_figure(
        plots.curves_by_seed(curves, ylabel="NT-Xent loss", title="pretraining loss, one line per seed"),
        root.result_figure("pretrain_loss"),
    )
    written = [root.result_figure("accuracy_by_seed"), root.result_figure("pretrain_loss")]
    knn_files = {m: [root.for_seed(o.seed).pretrain_knn(m) for o in outputs] for m in METHODS}
    if all(path.exists() and len(_curve(path, "knn_val_acc")[0]) for paths in knn_files.values() for path in paths):
        tracker.publish_figure(
            plots.curves_by_seed(
                {LABELS[m]: [_curve(p, "knn_val_acc") for p in paths] for m, paths in knn_files.items()},
                ylabel="kNN accuracy (validation)",
                title="kNN monitor during pretraining, one line per seed",
            ),
            root.result_figure("knn_monitor"),
        )
        written.append(root.result_figure("knn_monitor"))
    return [path.name for path in written]


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
    paired G-SimCLR − SimCLR difference and each method's paired margin over the untrained network, per
    representation. Written to results/metrics.json (DVC) and logged on the study's MLflow run."""
    cells = cell_values(rows, scale=1.0)
    metrics: dict[str, float] = {}
    for (method, rep), values in cells.items():
        metrics |= _summary(prefix + _cell_key(method, rep), summarize(values))
    for rep in (*TAPS, FINETUNE):
        simclr, guided, untrained = (cells[(m, rep)] for m in ("simclr", "gsimclr", "random_init"))
        metrics |= _summary(prefix + _cell_key("gsimclr_minus_simclr", rep), paired_difference(guided, simclr))
        for method, values in (("simclr", simclr), ("gsimclr", guided)):
            margin = paired_difference(values, untrained)
            metrics |= _summary(prefix + _cell_key(f"{method}_minus_random_init", rep), margin)
    return metrics


def compare(ctx: StageContext) -> str:
    """Pool every seed's metrics into results/results.md and results.csv (Tables II and III with the
    controls), draw the figures, and log them with the pooled means on one MLflow run that links the
    stage runs it read. Returns the Markdown."""
    root = Layout(ctx.layout.root)
    outputs = [read_seed(root.for_seed(seed)) for seed in ctx.params.seeds]
    rows = result_rows(outputs, ctx.params.data.paper_reference)
    balanced = result_rows(outputs, None, balanced=True) if ctx.params.data.imbalance_ratio > 1 else []
    with stage_run(STAGE, ctx.params, ctx.config) as tracker:
        names = figures(root, outputs, rows, tracker)
        text = render(ctx, outputs, rows, balanced, names, tracker.experiment_id)
        write_text(root.results_md, text)
        write_results(root.results_csv, rows + balanced)
        link_runs(tracker.run_id, [rec["run_id"] for o in outputs for rec in o.records.values()])
        pooled = pooled_metrics(rows) | (pooled_metrics(balanced, "balanced/") if balanced else {})
        write_json(root.results_metrics, pooled)
        tracker.log_metrics(pooled)
        tracker.log_artifact(root.results_md)
        tracker.log_artifact(root.results_csv)
    print(f"compare the runs: {ui_hint(tracker.experiment_id)}")
    return text
