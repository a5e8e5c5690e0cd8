"""Stage 5: SimCLR vs G-SimCLR (and supervised) side by side, in the layout of the paper's Tables II/III."""

from __future__ import annotations

from typing import Optional

from gsimclr.layout import EVAL_METHODS, METHODS
from gsimclr.models.heads import TAPS
from gsimclr.paper import PAPER_RESULTS
from gsimclr.stages.context import StageContext, finish, hardware
from gsimclr.storage import read_json, write_csv, write_text
from gsimclr.tracking import link_runs, stage_run, ui_command

STAGE = "compare"
LABELS = {"simclr": "SimCLR", "gsimclr": "G-SimCLR", "supervised": "Fully supervised"}


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}"


def result_rows(ctx: StageContext) -> list[dict]:
    """One row per (table, method, representation): our test accuracy in % and the paper's figure."""
    layout, reference = ctx.layout, ctx.params.data.paper_reference
    paper = PAPER_RESULTS.get(reference or "", {})
    scores = {method: read_json(layout.metrics("evaluate", method), f"evaluation of {method}") for method in EVAL_METHODS}
    rows = [{"table": "II", "method": "supervised", "representation": "–",
             "ours": 100 * scores["supervised"]["supervised_test_acc"], "paper": paper.get("supervised")}]
    for method in METHODS:
        for tap in TAPS:
            rows.append({"table": "II", "method": method, "representation": tap,
                         "ours": 100 * scores[method][f"linear_{tap}_test_acc"], "paper": paper.get(f"{method}/linear_{tap}")})
    for method in METHODS:
        rows.append({"table": "III", "method": method, "representation": "backbone",
                     "ours": 100 * scores[method]["finetune_test_acc"], "paper": paper.get(f"{method}/finetune")})
    return rows


def _metric_name(row: dict) -> str:
    if row["method"] == "supervised":
        return "supervised/test_acc"
    kind = "finetune" if row["table"] == "III" else f"linear_{row['representation']}"
    return f"{row['method']}/{kind}/test_acc"


def render(ctx: StageContext, rows: list[dict], records: dict[str, dict]) -> str:
    params, layout = ctx.params, ctx.layout
    reference = params.data.paper_reference
    paper_head = f" | paper ({reference})" if reference else ""
    paper_rule = " | ---:" if reference else ""

    def line(row: dict) -> str:
        paper = f" | {_pct(row['paper'])}" if reference else ""
        return f"| {LABELS[row['method']]} | {row['representation']} | {_pct(row['ours'])}{paper} |"

    ours = {(r["table"], r["method"], r["representation"]): r["ours"] for r in rows}
    delta = " · ".join(
        f"{tap} {ours[('II', 'gsimclr', tap)] - ours[('II', 'simclr', tap)]:+.2f}" for tap in TAPS
    ) + f" · fine-tune {ours[('III', 'gsimclr', 'backbone')] - ours[('III', 'simclr', 'backbone')]:+.2f}"
    cluster = read_json(layout.metrics("cluster"), "cluster metrics")
    pretrain = {m: read_json(layout.metrics("pretrain", m), f"pretrain metrics of {m}") for m in METHODS}
    fraction = params.evaluate.finetune_fraction
    random_pairs = pretrain["simclr"]["same_class_pairs_per_batch"]
    guided_pairs = pretrain["gsimclr"]["same_class_pairs_per_batch"]
    floor = cluster["min_same_class_pairs"]
    removed = f"{(random_pairs - guided_pairs) / (random_pairs - floor):.0%}" if random_pairs > floor else "n/a"
    out = [
        f"# SimCLR vs G-SimCLR on `{params.data.name}` (seed {params.seed})",
        "",
        "Test accuracy (%) of the model selected on the validation split (carved from the training data).",
        "",
        "## Table II — linear evaluation on frozen representations",
        "",
        f"| method | representation | ours{paper_head} |",
        f"| --- | --- | ---:{paper_rule} |",
        *[line(r) for r in rows if r["table"] == "II"],
        "",
        f"## Table III — fine-tuning with {fraction:.0%} of the training labels (class-stratified)",
        "",
        f"| method | representation | ours{paper_head} |",
        f"| --- | --- | ---:{paper_rule} |",
        *[line(r) for r in rows if r["table"] == "III"],
        "",
        f"G-SimCLR − SimCLR (points): {delta}. One seed: differences of this size can be noise.",
        "",
        "## Diagnostics (true labels used only to measure)",
        "",
        f"- Pseudo labels: k={params.cluster.k}, cluster sizes {cluster['size_min']:.0f}–{cluster['size_max']:.0f}, "
        f"NMI {cluster['nmi']:.3f}, ARI {cluster['ari']:.3f}, purity {cluster['purity']:.3f}.",
        f"- Same-class pairs per batch (pretrain.batch_size={params.pretrain.batch_size}) in the last pretraining epoch: "
        f"SimCLR {random_pairs:.1f}, G-SimCLR {guided_pairs:.1f}; the fewest any partition allows is "
        f"{floor:.1f}, so guidance removed {removed} of the false negatives perfect labels could remove.",
        f"- Distinct pseudo labels per G-SimCLR batch: {pretrain['gsimclr']['distinct_pseudo_labels_per_batch']:.1f} "
        f"(random batches of the same size: {cluster['random_distinct_pseudo_labels']:.1f}).",
        f"- Final NT-Xent loss: SimCLR {pretrain['simclr']['loss']:.4f}, G-SimCLR {pretrain['gsimclr']['loss']:.4f}.",
        "",
        "## Provenance",
        "",
        "| stage | MLflow run | wall time (s) | device |",
        "| --- | --- | ---: | --- |",
        *[f"| {name} | `{rec['run_id']}` | {rec['wall_s']} | {rec['device']} |" for name, rec in records.items()],
        "",
        f"Hardware: {hardware()}.",
        "",
        f"Compare the runs in the MLflow UI: `{ui_command()}`",
        "",
    ]
    return "\n".join(out)


def compare(ctx: StageContext) -> str:
    layout = ctx.layout
    rows = result_rows(ctx)
    records = {"train": read_json(layout.run_record("train"), "autoencoder run record"),
               "cluster": read_json(layout.run_record("cluster"), "cluster run record")}
    for method in METHODS:
        records[f"pretrain {method}"] = read_json(layout.run_record("pretrain", method), f"pretrain run record of {method}")
    for method in EVAL_METHODS:
        records[f"evaluate {method}"] = read_json(layout.run_record("evaluate", method), f"evaluate run record of {method}")
    text = render(ctx, rows, records)
    results_md, results_csv = layout.results / "results.md", layout.results / "results.csv"
    write_text(results_md, text)
    write_csv(results_csv, rows)
    with stage_run(STAGE, ctx.params) as tracker:
        link_runs(tracker.run_id, [record["run_id"] for record in records.values()])
        tracker.log_metrics({_metric_name(row): row["ours"] for row in rows})
        tracker.log_artifact(results_md)
        tracker.log_artifact(results_csv)
        finish(ctx, STAGE, tracker.run_id)
    return text
