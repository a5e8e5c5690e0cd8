"""What a report calls the guided arm: the oracle bound is named as one everywhere and never called better."""

from dataclasses import replace

import pytest
from conftest import REPO, forest_points

from gsimclr.outputs import plots
from gsimclr.outputs.metrics import ClusterMetrics, PretrainMetrics, ResultRow
from gsimclr.reporting.arm import arm_description
from gsimclr.reporting.diagnostics import diagnostics
from gsimclr.reporting.figures import accuracy_by_seed, paired_differences
from gsimclr.reporting.report import seeds_title
from gsimclr.reporting.rows import SeedOutputs
from gsimclr.reporting.tables import control_table, method_table, per_seed_table
from gsimclr.settings.config import Params
from gsimclr.settings.loading import load_params
from gsimclr.settings.names import METHODS, ORACLE_LABEL


def rows(guided: list[float], representations: tuple[str, ...] = ("P3",)) -> list[ResultRow]:
    values = {"simclr": [0.50, 0.52, 0.54], "gsimclr": guided, "random_init": [0.3, 0.3, 0.3]}
    return [
        ResultRow("II", "accuracy", method, rep, seed, acc, guided_by="oracle" if method == "gsimclr" else "")
        for method, accs in values.items()
        for rep in representations
        for seed, acc in enumerate(accs)
    ]


@pytest.mark.parametrize(
    "guidance,words",
    [
        (
            {},
            "G-SimCLR arm: guided batches, NT-Xent (same-cluster images stay negatives, as the paper); pseudo labels "
            "from k-means (k=64) on autoencoder features.",
        ),
        (
            {
                "labels": "network",
                "batches": "random",
                "false_negatives": "cancel",
                "warmup_epochs": 2,
                "refresh_every": 2,
                "refresh_k": 10,
            },
            "G-SimCLR arm: random batches, NT-Xent without same-cluster negatives (cancelled; Huynh et al. 2022) after "
            "2 epochs of plain SimCLR; pseudo labels from k-means of the model's own backbone embeddings (k=10), "
            "re-clustered every 2 epochs.",
        ),
        (
            {"labels": "oracle", "batches": "random", "false_negatives": "attract"},
            f"{ORACLE_LABEL}: random batches, NT-Xent with same-cluster images as extra positives (attracted; Huynh "
            f"et al. 2022); pseudo labels from the true training labels: {ORACLE_LABEL}.",
        ),
        (
            {"batches": "random", "false_negatives": "debiased", "tau_plus": 0.1},
            "G-SimCLR arm: random batches, debiased NT-Xent (tau_plus=0.1); no pseudo labels (random batches and a "
            "loss that reads none).",
        ),
    ],
)
def test_the_report_says_what_the_guided_arm_did(guidance, words):
    assert arm_description(Params(guidance=guidance)) == words


def test_tables_name_the_oracle_bound_and_never_call_it_better():
    table = method_table(rows([0.60, 0.62, 0.64]), ["P3"], None)
    assert table[0] == f"| representation | SimCLR | {ORACLE_LABEL} | {ORACLE_LABEL} − SimCLR (paired) | verdict |"
    assert table[2].endswith("| upper bound: room above SimCLR |") and "better" not in table[2]
    assert ORACLE_LABEL in control_table(rows([0.60, 0.62, 0.64]), ["P3"])[0]
    per_seed = per_seed_table(rows([0.60, 0.62, 0.64]), [0, 1, 2])
    assert per_seed[3] == f"| {ORACLE_LABEL} | P3 | 60.00 | 62.00 | 64.00 |"
    assert not any("G-SimCLR" in line for line in [*table, *per_seed])
    label_free = [replace(row, guided_by="network" if row.method == "gsimclr" else "") for row in rows([0.5] * 3)]
    assert "| G-SimCLR | P3 |" in per_seed_table(label_free, [0, 1, 2])[3]


def test_the_figures_name_the_oracle_bound():
    every = rows([0.60, 0.62, 0.64], ("P1", "P2", "P3", "fine-tune"))
    figure = accuracy_by_seed(every)
    legend = [text.get_text() for axis in figure.axes for text in axis.get_legend().get_texts()]
    assert ORACLE_LABEL in legend and "G-SimCLR" not in legend
    assert f"{ORACLE_LABEL} − SimCLR, P3" in forest_points(paired_differences(every))
    curves = {name: [([1, 2], [0.5, 0.6])] for name in ("SimCLR", ORACLE_LABEL)}
    figure = plots.curves_by_seed(curves, ylabel="kNN accuracy", title="t")
    figure.canvas.draw()
    axis = figure.axes[0]
    legend = axis.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == list(curves)
    assert legend.get_window_extent().y1 < axis.get_window_extent().y0  # below the axes: it hides no curve


def seed_outputs(seed: int) -> SeedOutputs:
    """One seed of an oracle-attract study as `compare` reads it: random batches, every false negative attracted."""
    cluster = ClusterMetrics(
        **dict.fromkeys(["inertia", "size_min", "size_max", "size_mean"], 100.0),
        clusters=64,
        nmi=0.11,
        ari=0.02,
        purity=0.28,
        min_same_class_pairs=173.6,
        random_distinct_pseudo_labels=39.2,
        random_same_pseudo_pairs=30.0,
        guided_distinct_pseudo_labels=60.0,
        guided_same_pseudo_pairs=2.0,
    )
    simclr = PretrainMetrics(loss=1.56, same_class_pairs_per_batch=201.6, epochs=20, processes=1)
    oracle = replace(
        simclr,
        loss=3.89,
        same_class_negatives_per_batch=0.0,
        false_negatives_removed=1.0,
        distinct_pseudo_labels_per_batch=9.98,
        pseudo_pair_precision=1.0,
    )
    return SeedOutputs(seed, {}, cluster, {"simclr": simclr, "gsimclr": oracle}, {})


def test_the_diagnostics_name_the_oracle_bound_and_the_labels_it_used():
    params = Params(guidance={"labels": "oracle", "batches": "random", "false_negatives": "attract"})
    lines = diagnostics([seed_outputs(s) for s in range(3)], params)
    assert not any("G-SimCLR" in line for line in lines), lines
    assert lines[0].startswith(
        f"- The autoencoder's pseudo labels (k=64; the {ORACLE_LABEL} arm did not train on them)"
    )
    assert lines[1].endswith(
        f"{ORACLE_LABEL} 201.60 ± 0.00; the fewest any partition allows is 173.6, and the "
        f"{ORACLE_LABEL} arm's batches are random, as SimCLR's."
    )
    assert f"Distinct labels per {ORACLE_LABEL} batch: 9.98 ± 0.00 (its labels: the true training labels" in lines[3]
    assert "random batches of the same size" not in lines[3]
    paper = diagnostics([seed_outputs(s) for s in range(3)], Params())
    assert paper[0].startswith("- Pseudo labels (k=64): NMI 0.110") and "G-SimCLR 201.60" in paper[1]
    assert "(random batches of the same size: 39.20 ± 0.00)" in paper[3]
    assert seeds_title(params, [0, 1, 2]).startswith(f"# SimCLR vs {ORACLE_LABEL} on ")


def test_the_committed_report_says_what_the_diagnostics_say_now():
    """The default study's committed results.md (written by `compare`) holds every diagnostics line the code writes
    today from the committed metrics, so a change of wording cannot leave the committed report stale."""
    params = load_params(REPO / "params.yaml")
    outputs = [
        SeedOutputs(
            seed,
            {},
            ClusterMetrics.read(REPO / "metrics" / f"seed{seed}" / "cluster.json", "cluster"),
            {m: PretrainMetrics.read(REPO / "metrics" / f"seed{seed}" / f"pretrain_{m}.json", m) for m in METHODS},
            {},
        )
        for seed in params.seeds
    ]
    report = (REPO / "results" / "results.md").read_text().splitlines()
    lines = diagnostics(outputs, params)
    assert len(lines) == 4 and all(line in report for line in lines), lines
