"""The MLflow views `compare` links to show the answer on the first screen: rendered by headless Chromium at
1600 x 1000, every seed's SimCLR and G-SimCLR P3 test accuracy (and the controls') must be in the table's visible
part, matching the stored metrics, and the charts must overlay both arms' loss and kNN-monitor curves. Runs where
Chromium is installed (Debian: `apt install chromium`)."""

import copy
import shutil

import mlflow
import pytest
from conftest import STUDY_COMMANDS, TINY_PARAMS, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.pipeline.answer_view import CURVES, curves_state, view_state
from tools.check_mlflow_view import (
    free_port,
    landing_links,
    missing_curves,
    on_first_screen,
    render,
    rendered_rows,
    serve,
    shows_curves,
    shows_rows,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_view_lists_the_runs_by_id_best_p3_first_with_the_headline_columns():
    state = view_state(["a" * 32, "b" * 32])
    assert state["searchFilter"] == f"attributes.run_id IN ('{'a' * 32}', '{'b' * 32}')"
    assert state["orderByKey"] == "metrics.`linear_P3/test_acc`" and state["orderByAsc"] is False
    assert state["selectedColumns"][0] == "metrics.`linear_P3/test_acc`"
    assert "metrics.`oracle_bound/linear_P3/test_acc`" in view_state(["a" * 32], oracle=True)["selectedColumns"]
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "method"}]


def test_the_curves_view_charts_only_the_curves_one_line_per_method():
    state = curves_state(["a" * 32])
    assert state["searchFilter"] == f"attributes.run_id IN ('{'a' * 32}')"
    assert state["chartsSearchFilter"] == "^(epoch/loss|epoch/knn_val_acc)$" and CURVES == (
        "epoch/loss",
        "epoch/knn_val_acc",
    )
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "method"}]
    assert state["useGroupedValuesInCharts"] is True and state["hideEmptyCharts"] is True


def test_a_page_without_both_arms_curves_fails_the_check():
    legend = '<span class="x">{} (epoch/{})</span>'
    full = "".join(legend.format(m, c) for m in ("simclr", "gsimclr") for c in ("loss", "knn_val_acc"))
    assert missing_curves(full) == []
    assert missing_curves(full.replace(legend.format("gsimclr", "loss"), "")) == ["gsimclr (epoch/loss)"]
    assert len(missing_curves("<div>epoch/loss</div>")) == 4


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt install chromium)")
def test_the_printed_link_shows_both_arms_p3_per_seed_on_the_first_screen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = copy.deepcopy(dict(TINY_PARAMS, seeds=[0, 1]))
    params["pretrain"]["knn"] = {"every": 1}
    write_params(tmp_path / "params.yaml", params)
    for seed in (0, 1):
        for command in STUDY_COMMANDS[:-1]:
            result = CliRunner().invoke(app, ["--device", "cpu", "--seed", str(seed), *command])
            assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["compare"])
    port = free_port()
    assert result.exit_code == 0, result.output
    answer, curves = (link.replace(":5000/", f":{port}/") for link in landing_links(result.output))
    assert "viewStateShareKey=" in answer and "workflowType=machine_learning" in answer
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    server = serve(store, port)
    try:
        rows = rendered_rows(render(answer, ready=shows_rows))
        missing = missing_curves(render(curves, ready=shows_curves))
    finally:
        server.terminate()
        server.wait()
    assert missing == [], f"the curves view does not overlay {missing}"
    mlflow.set_tracking_uri(store)
    client = mlflow.MlflowClient()
    for seed in (0, 1):
        for method in ("simclr", "gsimclr", "random_init"):
            name = f"evaluate-{method}-seed{seed}"
            assert name in rows, f"{name} is not rendered: {sorted(rows)}"
            row = rows[name]
            assert on_first_screen(row), (name, row)
            (run,) = client.search_runs(["1"], f"attributes.run_name = '{name}'")
            assert float(row["p3"]) == pytest.approx(run.data.metrics["linear_P3/test_acc"], abs=1e-3), (name, row)
