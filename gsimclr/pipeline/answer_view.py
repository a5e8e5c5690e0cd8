"""The MLflow views `compare` links to.

The answer: every seed's evaluation runs of one study -- SimCLR, G-SimCLR, the untrained network, raw pixels and
the supervised reference -- as rows of one table grouped by method (each group's row holds the method's mean over
seeds), best P3 test accuracy first, with the test accuracies that answer the study's question as its columns.

The curves: every seed's SimCLR and G-SimCLR pretraining runs in MLflow's chart view, grouped by method, so each
chart overlays the two arms' per-epoch kNN-monitor accuracy and loss (the mean over seeds, the band their range).

Each is saved the way MLflow's own "Share" button saves a view of the runs page: as the experiment tag
`mlflow.sharedViewState.<key>` holding the view's filter, sort order, grouping and columns or charts, opened by the
link `#/experiments/<id>/runs?viewStateShareKey=<key>`. The filter names the runs by id, so runs a DVC experiment
reused from another study (its SimCLR arm, its controls) are rows too, and the study's `compare` run, which nests
the others under it, is not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

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

CURVES = ("epoch/loss", "epoch/knn_val_acc")
"""The per-epoch pretraining metrics the curves view charts (logged with step = epoch)."""

BY_METHOD = {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": "method"}]}
"""MLflow's run grouping by the `method` tag every stage run carries; a group's row and chart line are the mean."""


def _runs(run_ids: Sequence[str]) -> str:
    return "attributes.run_id IN ({})".format(", ".join(f"'{run_id}'" for run_id in run_ids))


def view_state(run_ids: Sequence[str], oracle: bool = False) -> dict[str, object]:
    """The shared view of the evaluation runs `run_ids`: grouped by method, best P3 first, the headline test
    accuracies as columns (the oracle bound's runs log theirs as `oracle_bound/...`, beside them)."""
    names = [*HEADLINE, *(f"{ORACLE_PREFIX}/{name}" for name in HEADLINE[:3] if oracle)]
    return {
        "searchFilter": _runs(run_ids),
        "orderByKey": f"metrics.`{HEADLINE[0]}`",
        "orderByAsc": False,
        "selectedColumns": [f"metrics.`{name}`" for name in names] + ["tags.`method`", "tags.`seed`"],
        "groupBy": BY_METHOD,
    }


def curves_state(run_ids: Sequence[str]) -> dict[str, object]:
    """The shared chart view of the pretraining runs `run_ids`: one chart per curve in `CURVES`, one line per method."""
    return {
        "searchFilter": _runs(run_ids),
        "orderByKey": "attributes.run_name",
        "orderByAsc": True,
        "groupBy": BY_METHOD,
        "useGroupedValuesInCharts": True,
        "hideEmptyCharts": True,
        "chartsSearchFilter": "^({})$".format("|".join(CURVES)),
    }


def share_view(experiment_id: str, key: str, state: Mapping[str, object], charts: bool = False) -> str:
    """Save `state` under `key` on the experiment; returns the link that opens it (in the chart view if `charts`)."""
    MlflowClient().set_experiment_tag(experiment_id, f"mlflow.sharedViewState.{key}", json.dumps(state))
    return ui_link(experiment_id, key, "CHART" if charts else None)
