"""Stage 5: SimCLR vs G-SimCLR (and the supervised reference and controls) over all seeds, in the layout of
the paper's Tables II/III (`gsimclr.reporting`), logged on one MLflow run that links the runs it read."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from gsimclr.models.heads import TAPS
from gsimclr.outputs import plots
from gsimclr.outputs.metrics import ClusterMetrics, EvaluationMetrics, PretrainMetrics, ResultRow, write_results
from gsimclr.pipeline.answer_view import curves_state, share_view, view_state
from gsimclr.pipeline.layout import Layout
from gsimclr.pipeline.registry import tag_versions_of_run
from gsimclr.pipeline.tracking import StageRun, link_runs, stage_run
from gsimclr.pipeline.tracking_names import ui_hint
from gsimclr.reporting.figures import accuracy_by_seed
from gsimclr.reporting.report import render
from gsimclr.reporting.rows import SeedOutputs, labels_of_rows, pooled_metrics, result_rows
from gsimclr.settings.names import EVAL_METHODS, METHODS, EvalMethod, Stage
from gsimclr.stages.context import StageContext
from gsimclr.system.storage import read_json, write_json, write_text

STAGE = "compare"


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


def _curve(path: Path, column: str) -> tuple[list[int], list[float]]:
    with open(path, newline="") as handle:
        records = list(csv.DictReader(handle))
    return [int(r["epoch"]) for r in records], [float(r[column]) for r in records]


def figures(root: Layout, outputs: list[SeedOutputs], rows: list[ResultRow], tracker: StageRun) -> list[str]:
    """accuracy_by_seed.png, pretrain_loss.png and, when pretraining ran the kNN monitor, knn_monitor.png;
    returns the names of those written (`gsimclr figures` adds the forest plot of the paired differences)."""
    tracker.publish_figure(accuracy_by_seed(rows), root.result_figure("accuracy_by_seed"))
    labels = labels_of_rows(rows)
    curves = {
        labels[m]: [_curve(root.for_seed(o.seed).pretrain_loss(m, "csv"), f"{m}_loss") for o in outputs]
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
                {labels[m]: [_curve(p, "knn_val_acc") for p in paths] for m, paths in knn_files.items()},
                ylabel="kNN accuracy (validation)",
                title="kNN monitor during pretraining, one line per seed",
            ),
            root.result_figure("knn_monitor"),
        )
        written.append(root.result_figure("knn_monitor"))
    return [path.name for path in written]


def side_by_side(outputs: Sequence[SeedOutputs], tracker: StageRun, oracle: bool) -> tuple[str, str]:
    """Two ways into MLflow, as lines a person can follow: every seed's evaluation runs -- both methods, the
    controls, the reference -- in one table grouped by method, best P3 first; and both arms' pretraining curves
    overlaid. Both views are saved under this comparison's run id (without an experiment: the UI's home)."""
    if tracker.experiment_id is None or tracker.run_id is None:
        return ui_hint(), ui_hint()
    evaluations = [o.records[f"evaluate {method}"]["run_id"] for method in EVAL_METHODS for o in outputs]
    pretraining = [o.records[f"pretrain {method}"]["run_id"] for method in METHODS for o in outputs]
    answer = share_view(tracker.experiment_id, tracker.run_id, view_state(evaluations, oracle))
    curves = share_view(tracker.experiment_id, f"{tracker.run_id}-curves", curves_state(pretraining), charts=True)
    return ui_hint(answer), ui_hint(curves)


def tag_registered_encoders(outputs: Sequence[SeedOutputs], rows: Sequence[ResultRow]) -> None:
    """Each seed's registered SimCLR and G-SimCLR encoder gets its linear-probe test accuracies as tags
    (`P3_test_acc`, ...), so the registry says how well a version did (percent, as the tables print)."""
    for o in outputs:
        for method in METHODS:
            accuracy = {
                f"{row.representation}_test_acc": f"{100 * row.test_acc:.2f}"
                for row in rows
                if row.method == method
                and row.seed == o.seed
                and row.representation in TAPS
                and row.metric == "accuracy"
            }
            tag_versions_of_run(o.records[f"pretrain {method}"].get("run_id"), accuracy)


def compare(ctx: StageContext) -> str:
    """Pool every seed's metrics into results/results.md and results.csv (Tables II and III with the
    controls), draw the figures, and log them with the pooled means on one MLflow run that links the
    stage runs it read. Returns the Markdown."""
    root = Layout(ctx.layout.root)
    outputs = [read_seed(root.for_seed(seed)) for seed in ctx.params.seeds]
    source = ctx.params.guidance.labels
    evaluations = {o.seed: o.evaluation for o in outputs}
    rows = result_rows(evaluations, ctx.params.data.paper_reference, guided_by=source)
    balanced = result_rows(evaluations, None, True, source) if ctx.params.data.imbalance_ratio > 1 else []
    with stage_run(STAGE, ctx.params, ctx.config) as tracker:
        names = figures(root, outputs, rows, tracker)
        answer, curves = side_by_side(outputs, tracker, source == "oracle")
        both = f"SimCLR and {labels_of_rows(rows)['gsimclr']}"
        text = render(
            ctx.params,
            outputs,
            rows,
            balanced,
            names,
            f"{both} side by side in the MLflow UI (every seed's evaluation runs with the controls, "
            f"grouped by method, best P3 test accuracy first): {answer}\n\n"
            f"Their pretraining curves overlaid (kNN monitor and loss, the mean over seeds per method): {curves}",
        )
        write_text(root.results_md, text)
        write_results(root.results_csv, rows + balanced)
        link_runs(tracker.run_id, [rec["run_id"] for o in outputs for rec in o.records.values()])
        tag_registered_encoders(outputs, rows)
        pooled = pooled_metrics(rows) | (pooled_metrics(balanced, "balanced/") if balanced else {})
        write_json(root.results_metrics, pooled)
        tracker.log_metrics(pooled)
        tracker.log_artifact(root.results_md)
        tracker.log_artifact(root.results_csv)
    print(f"{both} side by side: {answer}")
    print(f"Their pretraining curves overlaid: {curves}")
    return text
