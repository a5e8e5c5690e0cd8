"""MLflow conventions: a study's runs nest under its own comparison run, never under another study's;
the UI hint holds no machine path."""

import mlflow
from mlflow import MlflowClient

from gsimclr import tracking


def test_a_study_never_takes_another_studys_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "artifacts").as_uri())

    def run(study: str) -> str:
        return client.create_run(experiment, tags={"study": study}).info.run_id

    shared, own = run("baseline"), run("variant")
    baseline_compare, variant_compare = run("baseline"), run("variant")
    monkeypatch.setenv("DVC_EXP_NAME", "baseline")
    tracking.link_runs(baseline_compare, [shared])
    monkeypatch.setenv("DVC_EXP_NAME", "variant")
    tracking.link_runs(variant_compare, [shared, own])

    tags = {run_id: client.get_run(run_id).data.tags for run_id in (shared, own, variant_compare)}
    assert tags[shared]["mlflow.parentRunId"] == baseline_compare  # not moved
    assert tags[shared]["used_by.variant"] == variant_compare
    assert tags[own]["mlflow.parentRunId"] == variant_compare
    assert tags[variant_compare]["shared_runs"] == shared


def test_the_ui_hint_of_the_project_store_is_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    hint = tracking.ui_hint("7")
    assert "sqlite:///mlruns/mlflow.db" in hint and str(tmp_path) not in hint
    assert hint.endswith("http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://user:secret@mlflow.example.org")
    assert tracking.ui_hint("7") == (
        "open https://user:***@mlflow.example.org/#/experiments/7/runs?workflowType=machine_learning"
    )


def test_the_project_store_keeps_artifacts_under_mlruns(tmp_path, monkeypatch):
    """Also when an earlier stage in the same process exported MLFLOW_TRACKING_URI (mlflow does that)."""
    from gsimclr.config import Params

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.local_uri())
    experiment = mlflow.get_experiment(tracking._connect(Params()))
    assert experiment.artifact_location == (tmp_path / "mlruns" / "artifacts" / "gsimclr-digits").as_uri()
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
