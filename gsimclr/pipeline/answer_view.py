"""The MLflow view `compare` links to: every seed's evaluation runs of one study -- SimCLR, G-SimCLR, the untrained
network, raw pixels and the supervised reference -- as rows of one table, best P3 test accuracy first, with the
test accuracies that answer the study's question as its columns.

It is saved the way MLflow's own "Share" button saves a view of the runs page: as the experiment tag
`mlflow.sharedViewState.<key>` holding the view's filter, sort order and columns, opened by the link
`#/experiments/<id>/runs?viewStateShareKey=<key>`. The filter names the runs by id, so runs a DVC experiment reused
from another study (its SimCLR arm, its controls) are rows too, and the study's `compare` run, which nests the
others under it, is not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from mlflow.tracking import MlflowClient

from gsimclr.pipeline.tracking_names import ui_link
from gsimclr.settings.names import ORACLE_PREFIX

HEADLINE = (
    "linear_P3/test_acc",
    "finetune/test_acc",
    "linear_P1/test_acc",
    "linear_pixels/test_acc",
    "supervised/test_acc",
)
"""The columns, in the order a reader wants them: P3 (sorted on), fine-tuning, P1, the pixel control, the reference."""


def view_state(run_ids: Sequence[str], oracle: bool = False) -> dict[str, object]:
    """The shared view of `run_ids`: their rows, best P3 first, the headline test accuracies as columns (the oracle
    bound's runs log theirs as `oracle_bound/...`, beside them)."""
    names = [*HEADLINE, *(f"{ORACLE_PREFIX}/{name}" for name in HEADLINE[:3] if oracle)]
    return {
        "searchFilter": "attributes.run_id IN ({})".format(", ".join(f"'{run_id}'" for run_id in run_ids)),
        "orderByKey": f"metrics.`{HEADLINE[0]}`",
        "orderByAsc": False,
        "selectedColumns": [f"metrics.`{name}`" for name in names] + ["tags.`method`", "tags.`seed`"],
    }


def share_answer_view(experiment_id: str, run_ids: Sequence[str], key: str, oracle: bool = False) -> str:
    """Save the view of `run_ids` under `key` on the experiment; returns the link that opens it."""
    MlflowClient().set_experiment_tag(
        experiment_id, f"mlflow.sharedViewState.{key}", json.dumps(view_state(run_ids, oracle))
    )
    return ui_link(experiment_id, key)
