"""MLflow conventions: a study's runs nest under its own comparison run, never under another study's;
the UI hint holds no machine path; a copied project keeps its own store; a failing store says what is wrong."""

import os
import shutil
import sqlite3

import mlflow
import pytest
from conftest import TINY_PARAMS, write_params
from mlflow import MlflowClient

from gsimclr.pipeline import tracking, tracking_names, tracking_store


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
    hint = tracking_names.ui_hint(tracking_names.ui_link("7"))
    assert "sqlite:///mlruns/mlflow.db" in hint and str(tmp_path) not in hint
    assert hint.endswith("http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://user:secret@mlflow.example.org")
    assert tracking_names.ui_hint(tracking_names.ui_link("7")) == (
        "open https://user:***@mlflow.example.org/#/experiments/7/runs?workflowType=machine_learning"
    )


def test_the_project_store_keeps_artifacts_under_mlruns(tmp_path, monkeypatch):
    """Also when an earlier stage in the same process exported MLFLOW_TRACKING_URI (mlflow does that)."""
    from gsimclr.settings.config import Params

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_names.local_uri())
    experiment = mlflow.get_experiment(tracking_store.connect(Params()))
    assert experiment.artifact_location == (tmp_path / "mlruns" / "artifacts" / "gsimclr-digits").as_uri()
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def gsimclr_in(folder, *args):
    import subprocess
    import sys

    command = [sys.executable, "-m", "gsimclr", "--params", "params.yaml", "--device", "cpu", *args]
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_a_copied_project_writes_its_runs_and_artifacts_only_into_its_own_store(tmp_path):
    """`cp -a X Y; rm -rf X`, then a stage in Y: it once re-created X/mlruns/artifacts/ and wrote there."""
    original, copy = tmp_path / "X", tmp_path / "Y"
    original.mkdir()
    write_params(original / "params.yaml", TINY_PARAMS)
    for stage in ("prepare", "autoencoder"):
        assert gsimclr_in(original, stage).returncode == 0
    shutil.copytree(original, copy, symlinks=True)
    shutil.rmtree(original)
    result = gsimclr_in(copy, "cluster")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not original.exists()
    mlflow.set_tracking_uri(f"sqlite:///{copy / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["gsimclr-digits"])
    assert len(runs) == 2 and all(uri.startswith((copy / "mlruns").as_uri()) for uri in runs["artifact_uri"])
    cluster = runs[runs["tags.stage"] == "cluster"].iloc[0]
    assert any((copy / "mlruns" / "artifacts").rglob("*.png")) and cluster["artifact_uri"].endswith("/artifacts")


def test_a_corrupt_store_says_so_in_one_line(tmp_path):
    write_params(tmp_path / "params.yaml", TINY_PARAMS)
    (tmp_path / "mlruns").mkdir()
    (tmp_path / "mlruns" / "mlflow.db").write_bytes(b"this is no sqlite database" * 100)
    result = gsimclr_in(tmp_path, "autoencoder")
    errors = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(errors) == 1 and "corrupt" in errors[0], result.stderr[-2000:]
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (sqlite3.OperationalError("database is locked"), "locked by another process"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
        (sqlite3.OperationalError("database or disk is full"), "the disk is full"),
        (sqlite3.DatabaseError("file is not a database"), "corrupt"),
        (ConnectionError("refused"), "not reachable"),
    ],
)
def test_store_failures_are_named_from_sqlites_own_words(raised, said):
    wrapped = RuntimeError("(sqlite3.OperationalError) wrapped by SQLAlchemy")
    wrapped.__cause__ = raised
    assert said in tracking_store.store_problem(wrapped)


def test_a_local_dataset_root_is_logged_without_mlflow_s_duplicate_source_warning(tmp_path, monkeypatch, recwarn):
    """MLflow registers its local-file source twice and warns on every local path; a stage's log stays clean."""
    from gsimclr.settings.config import Params

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_names.local_uri())
    with tracking.stage_run("autoencoder", Params(), {}, seed=0) as run:
        run.log_dataset("cifar10", str(tmp_path), "abc", {"train": 3})
        run_id = run.run_id
    assert not [w for w in recwarn if "interpreted in multiple ways" in str(w.message)]
    (dataset,) = MlflowClient().get_run(run_id).inputs.dataset_inputs
    assert dataset.dataset.name == "cifar10" and str(tmp_path) in dataset.dataset.source
