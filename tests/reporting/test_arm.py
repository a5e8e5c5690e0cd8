"""What a report calls the guided arm: the oracle bound is named as one everywhere and never called better."""

import pytest

from gsimclr.outputs.metrics import ResultRow
from gsimclr.reporting.arm import arm_description, arm_labels
from gsimclr.reporting.tables import control_table, method_table
from gsimclr.settings.config import Params
from gsimclr.settings.names import ORACLE_LABEL


def rows(guided: list[float]) -> list[ResultRow]:
    values = {"simclr": [0.50, 0.52, 0.54], "gsimclr": guided, "random_init": [0.3, 0.3, 0.3]}
    return [
        ResultRow("II", "accuracy", method, "P3", seed, acc, guided_by="oracle" if method == "gsimclr" else "")
        for method, accs in values.items()
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
    labels = arm_labels(Params(guidance={"labels": "oracle", "false_negatives": "cancel"}))
    table = method_table(rows([0.60, 0.62, 0.64]), ["P3"], None, labels)
    assert table[0] == f"| representation | SimCLR | {ORACLE_LABEL} | {ORACLE_LABEL} − SimCLR (paired) | verdict |"
    assert table[2].endswith("| upper bound: room above SimCLR |") and "better" not in table[2]
    assert ORACLE_LABEL in control_table(rows([0.60, 0.62, 0.64]), ["P3"], labels=labels)[0]
    assert arm_labels(Params())["gsimclr"] == "G-SimCLR"
