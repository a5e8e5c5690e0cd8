"""The bad-input catalogue: each user mistake is one line on stderr, a non-zero exit, no traceback, nothing lost.

(Config keys, missing/invalid params files, missing or mismatched pseudo labels, unknown device or
method and a seed outside `seeds` are in test_config_cli.py; dataset problems in test_data.py.)
"""

import errno
import os

import pytest
from conftest import TINY_PARAMS, write_image_folder, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.pipeline.layout import Layout

runner = CliRunner()


def gsimclr(params, *args: str, env: dict | None = None):
    return runner.invoke(app, ["--params", str(params), "--device", "cpu", *args], env=env)


def one_line_error(result, code: int, needle: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], result.output


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def with_params(root, **sections):
    params = {**TINY_PARAMS}
    for section, values in sections.items():
        params[section] = {**params[section], **values} if isinstance(values, dict) else values
    return write_params(root / "params.yaml", params)


def test_missing_dataset_path(project):
    params = with_params(project, data={"name": "imagefolder", "root": str(project / "nowhere")})
    one_line_error(gsimclr(params, "autoencoder"), 2, "nowhere")


def test_dataset_with_one_class(project):
    write_image_folder(project / "data", classes=("cat",), per_class=6)
    params = with_params(project, data={"name": "imagefolder", "root": str(project / "data"), "image_size": 8})
    one_line_error(gsimclr(params, "autoencoder"), 2, "at least two classes")


def test_k_larger_than_the_number_of_images(project):
    write_image_folder(project / "data", classes=("cat", "dog"), per_class=6)
    params = with_params(
        project, data={"name": "imagefolder", "root": str(project / "data"), "image_size": 8}, autoencoder={"epochs": 1}
    )
    assert gsimclr(params, "autoencoder").exit_code == 0
    one_line_error(gsimclr(params, "cluster"), 2, "cluster.k=16 is larger than the 12 training images")


def test_batch_size_larger_than_the_dataset(project):
    params = with_params(project, pretrain={"batch_size": 5000})
    one_line_error(gsimclr(params, "pretrain", "--method", "simclr"), 2, "pretrain.batch_size=5000 is larger")


@pytest.mark.parametrize("value", [0, -1])
def test_zero_or_negative_values(project, value):
    params = with_params(project, pretrain={"epochs": value})
    one_line_error(gsimclr(params, "pretrain", "--method", "simclr"), 2, "pretrain.epochs")


def test_a_warm_up_as_long_as_training_is_a_config_error(project):
    params = with_params(project, pretrain={"epochs": 3, "warmup_epochs": 3})
    one_line_error(gsimclr(params, "pretrain", "--method", "simclr"), 2, "pretrain.warmup_epochs=3 must be shorter")


def test_a_knn_k_larger_than_the_memory_bank_fails_before_training(project):
    params = with_params(project, pretrain={"knn": {"every": 1, "k": 5000}})
    one_line_error(
        gsimclr(params, "pretrain", "--method", "simclr"), 2, "pretrain.knn.k=5000 is larger than the kNN memory bank"
    )
    assert not (project / "checkpoints").exists() or not any((project / "checkpoints").rglob("*.pt"))


def test_a_file_that_is_not_a_checkpoint(project):
    params = with_params(project)
    path = Layout().for_seed(0).pretrained("simclr")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint at all")
    one_line_error(gsimclr(params, "evaluate", "--method", "simclr"), 2, "is not a valid pretrained model checkpoint")
    assert path.read_bytes() == b"not a checkpoint at all"


def test_a_checkpoint_of_another_architecture(project):
    small = with_params(project, pretrain={"epochs": 1})
    assert gsimclr(small, "pretrain", "--method", "simclr").exit_code == 0
    wider = with_params(project, model={"head_dims": [64, 16, 8]})
    one_line_error(gsimclr(wider, "evaluate", "--method", "simclr"), 2, "another model config")


def test_diverging_loss_stops_names_the_epoch_and_suggests_a_lower_lr(project):
    params = with_params(project, pretrain={"epochs": 3, "lr": 1e30})
    result = gsimclr(params, "pretrain", "--method", "simclr")
    one_line_error(result, 1, "epoch 1")
    assert "lower" in result.output and "lr" in result.output
    assert not Layout().for_seed(0).pretrained("simclr").exists()


def test_unreachable_tracking_server_fails_before_training(project):
    params = with_params(project)
    uri = "http://127.0.0.1:9"  # the discard port: nothing listens
    result = gsimclr(params, "autoencoder", env={"MLFLOW_TRACKING_URI": uri})
    one_line_error(result, 2, uri)
    assert not Layout().for_seed(0).autoencoder.exists() and not (project / "checkpoints").exists()


def test_a_registry_that_fails_after_training_loses_nothing(project, monkeypatch):
    import mlflow.pytorch

    params = with_params(project)
    real = mlflow.pytorch.log_model

    def unreachable(*args, **kwargs):
        raise ConnectionError("registry down")

    monkeypatch.setattr(mlflow.pytorch, "log_model", unreachable)
    result = gsimclr(params, "autoencoder")
    one_line_error(result, 2, "the trained model is saved at artifacts/seed0/autoencoder.pt")
    model = Layout().for_seed(0).autoencoder
    trained = model.read_bytes()
    assert Layout().for_seed(0).autoencoder_training.checkpoint.exists()  # kept: the re-run resumes from it
    monkeypatch.setattr(mlflow.pytorch, "log_model", real)
    result = gsimclr(params, "autoencoder")
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.output and "after epoch 2" in result.output  # no epoch trained again
    assert model.read_bytes() == trained


def test_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(project, monkeypatch):
    params = with_params(project, autoencoder={"epochs": 1})
    assert gsimclr(params, "autoencoder").exit_code == 0
    model = Layout().for_seed(0).autoencoder
    good = model.read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    result = gsimclr(params, "autoencoder", "--restart")
    one_line_error(result, 1, "no space left on device while writing")
    assert model.read_bytes() == good
    assert not [p for p in model.parent.iterdir() if p.name.endswith(".tmp")]
