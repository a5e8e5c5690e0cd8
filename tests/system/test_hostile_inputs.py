"""No silent wrong results and no code from data files (issue 13): each case fails before its fix."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_PARAMS, write_cifar_fixture, write_image_folder, write_params
from mlflow.tracking import MlflowClient
from torch import nn
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.pipeline.tracking_names import metric_key, redacted
from gsimclr.system.errors import TrainingDivergedError, UserError
from gsimclr.training.device import select_device
from gsimclr.training.engine import LoopConfig, Training, fit

runner = CliRunner()


def gsimclr(params: Path, *args: str):
    return runner.invoke(app, ["--params", str(params), "--device", "cpu", *args])


def one_line_error(result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], result.output


def params_with(tmp_path: Path, **sections) -> Path:
    params = {**TINY_PARAMS}
    for section, values in sections.items():
        params[section] = {**params[section], **values}
    return write_params(tmp_path / "params.yaml", params)


@pytest.mark.parametrize(
    "key, value", [("temperature", float("inf")), ("lr", float("nan")), ("weight_decay", float("inf"))]
)
def test_infinite_or_nan_numbers_are_config_errors(tmp_path, monkeypatch, key, value):
    monkeypatch.chdir(tmp_path)
    one_line_error(
        gsimclr(params_with(tmp_path, pretrain={key: value}), "pretrain", "--method", "simclr"), f"pretrain.{key}"
    )


class Payload:
    """What a booby-trapped pickle carries: unpickling it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_booby_trapped_cifar_batch_is_refused_and_its_code_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar_fixture(tmp_path / "data")
    marker = tmp_path / "pwned"
    with (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1").open("wb") as handle:
        pickle.dump({b"data": Payload(marker), b"labels": []}, handle, protocol=2)
    params = params_with(tmp_path, data={"name": "cifar10", "root": str(tmp_path / "data"), "image_size": 8})
    one_line_error(gsimclr(params, "train"), "refusing to load")
    assert not marker.exists()


def test_the_real_cifar_format_still_loads(tmp_path, monkeypatch):
    from gsimclr.data.loaders import load_dataset
    from gsimclr.settings.config import DataConfig

    first_data, first_labels = write_cifar_fixture(tmp_path / "data")
    data = load_dataset(DataConfig(name="cifar10", root=str(tmp_path / "data"), image_size=32))
    assert data.classes[0] == "airplane" and data.train_y[: len(first_labels)].tolist() == first_labels
    assert torch.equal(data.train_x[0], torch.from_numpy(first_data[0].reshape(3, 32, 32)))


def test_changed_pseudo_labels_are_never_resumed_from_an_old_checkpoint(tmp_path, monkeypatch):
    """Kill G-SimCLR pretraining after an epoch, re-cluster, re-run: it must start over, not resume."""
    monkeypatch.chdir(tmp_path)
    params = params_with(tmp_path, pretrain={"epochs": 2})
    assert gsimclr(params, "autoencoder").exit_code == 0 and gsimclr(params, "cluster").exit_code == 0
    import gsimclr.method.contrastive_step as stage

    calls = {"n": 0}
    real = stage.nt_xent

    def dies_in_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 90:  # 1437 images / 16 per batch = 90 batches in epoch 1
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(stage, "nt_xent", dies_in_epoch_two)
    assert gsimclr(params, "pretrain", "--method", "gsimclr").exit_code == 130
    assert (tmp_path / "checkpoints" / "seed0" / "pretrain_gsimclr.pt").exists()
    monkeypatch.setattr(stage, "nt_xent", real)
    labels = tmp_path / "artifacts" / "seed0" / "pseudo_labels.csv"
    rows = labels.read_text().splitlines()
    labels.write_text("\n".join([rows[0], *[f"{i},{i % 16}" for i in range(len(rows) - 1)]]) + "\n")
    result = gsimclr(params, "pretrain", "--method", "gsimclr")
    assert result.exit_code == 0, result.output
    assert "is for another configuration; starting over" in result.output and "resuming" not in result.output


def test_weights_that_turn_nan_behind_a_finite_loss_are_never_checkpointed(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    x = torch.ones(4, 2)
    run = Training(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=float("inf")),
        batches=lambda epoch: [0],
        step=lambda batch: {"loss": model(x).sum()},
    )
    checkpoint = tmp_path / "ckpt.pt"
    with pytest.raises(TrainingDivergedError, match="weights became NaN/Inf in epoch 1"):
        fit(run, LoopConfig(desc="t", epochs=2, seed=0, checkpoint=checkpoint))
    assert not checkpoint.exists()


def test_metric_keys_and_uris_are_made_safe():
    assert metric_key("linear_P3/test_acc_a (b)") == "linear_P3/test_acc_a _b_"
    assert metric_key("finetune/val_acc") == "finetune/val_acc"
    assert redacted("postgresql://user:secret@db:5432/mlflow") == "postgresql://user:***@db:5432/mlflow"
    assert redacted("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_a_password_in_the_tracking_uri_is_never_printed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:hunter2@127.0.0.1:9")
    result = gsimclr(params_with(tmp_path), "train")
    assert result.exit_code == 2 and "hunter2" not in result.output and "user:***@127.0.0.1:9" in result.output


def test_a_cuda_index_beyond_the_machine_is_a_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match="has 1 CUDA device"):
        select_device("cuda:3")


def test_few_tsne_points_still_plot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = params_with(tmp_path, cluster={"tsne_points": 15})
    assert gsimclr(params, "train").exit_code == 0
    result = gsimclr(params, "cluster")
    assert result.exit_code == 0, result.output


def image_folder_params(tmp_path: Path) -> Path:
    return params_with(
        tmp_path,
        data={"name": "imagefolder", "root": str(tmp_path / "data"), "image_size": 8},
        autoencoder={"epochs": 1},
        cluster={"k": 4},
    )


def test_an_image_in_both_splits_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "data", per_class=6)
    leaked = next((tmp_path / "data" / "train" / "cat").iterdir())
    (tmp_path / "data" / "test" / "cat" / f"copy{leaked.suffix}").write_bytes(leaked.read_bytes())
    one_line_error(gsimclr(image_folder_params(tmp_path), "train"), "also appear in train/")


def test_a_symlink_loop_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "data", per_class=6)
    (tmp_path / "data" / "train" / "cat" / "loop").symlink_to(tmp_path / "data" / "train")
    one_line_error(gsimclr(image_folder_params(tmp_path), "train"), "symlink loop")


def test_decompression_bombs_are_skipped_and_odd_modes_counted(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "data", per_class=6)
    Image.new("RGB", (400, 400)).save(tmp_path / "data" / "train" / "cat" / "bomb.png")
    Image.new("RGBA", (20, 14), (200, 10, 10, 128)).save(tmp_path / "data" / "train" / "dog" / "rgba.png")
    Image.new("CMYK", (20, 14)).save(tmp_path / "data" / "train" / "dog" / "cmyk.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # 400 x 400 > 2 x this: a "bomb"
    result = gsimclr(image_folder_params(tmp_path), "train")
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable image(s)" in result.output and "bomb.png" in result.output
    assert "converted 2 image(s) that are not 8-bit RGB or grey" in result.output


def test_two_stages_starting_at_once_on_a_fresh_store_both_finish(tmp_path):
    """The first two processes on a new store race to create the experiment; both must finish."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    roots = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_params(
            tmp_path / name / "params.yaml", {**TINY_PARAMS, "autoencoder": {**TINY_PARAMS["autoencoder"], "epochs": 1}}
        )
        roots.append(tmp_path / name)
    gsimclr_bin = Path(sys.executable).parent / "gsimclr"
    processes = [
        subprocess.Popen(
            [str(gsimclr_bin), "--device", "cpu", "train"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for root in roots
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    code = (
        "import mlflow; from mlflow.tracking import MlflowClient; c = MlflowClient();"
        "exps = [e for e in c.search_experiments() if e.name == 'gsimclr-digits'];"
        "runs = c.search_runs([exps[0].experiment_id]);"
        "print(len(exps), sorted(r.info.status for r in runs))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1 ['FINISHED', 'FINISHED']"


def test_a_killed_write_leaves_no_tmp_file_behind_the_next_one(tmp_path):
    from gsimclr.system.storage import write_text

    stale = tmp_path / ".results.md.abc123.tmp"
    stale.write_text("half a file")
    write_text(tmp_path / "results.md", "whole")
    assert not stale.exists() and (tmp_path / "results.md").read_text() == "whole"


def test_a_run_left_running_by_a_killed_stage_is_marked_killed_on_the_next_start(tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    params = params_with(tmp_path)
    assert gsimclr(params, "autoencoder").exit_code == 0  # creates the store and the experiment
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("gsimclr-digits")
    orphan = MlflowClient().create_run(experiment.experiment_id, tags={"stage": "autoencoder", "seed": "0"}).info.run_id
    assert gsimclr(params, "autoencoder", "--restart").exit_code == 0
    assert MlflowClient().get_run(orphan).info.status == "KILLED"


@pytest.mark.parametrize("size", [2, 4096])
def test_an_image_size_out_of_range_is_a_config_error(tmp_path, monkeypatch, size):
    monkeypatch.chdir(tmp_path)
    one_line_error(gsimclr(params_with(tmp_path, data={"image_size": size}), "train"), "data.image_size")


def test_the_resume_identity_covers_the_training_data(tmp_path):
    """One changed pixel of the training split is another identity: a checkpoint from the old data is never resumed."""
    from gsimclr.data.splits import ImageSplits
    from gsimclr.pipeline.layout import Layout
    from gsimclr.settings.config import Params
    from gsimclr.stages.context import stage_context

    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    labels = torch.tensor([0, 1, 0, 1])
    original = ImageSplits(images, labels, images, labels, ["a", "b"])
    touched = images.clone()
    touched[2, 0, 3, 3] = 1
    changed = ImageSplits(touched, labels, images, labels, ["a", "b"])
    ctx = stage_context(Params(), "autoencoder", None, 0, Layout(tmp_path), torch.device("cpu"))
    assert ctx.config_hash(original) == ctx.config_hash(ImageSplits(images.clone(), labels, images, labels, ["a", "b"]))
    assert ctx.config_hash(original) != ctx.config_hash(changed)
    other = stage_context(
        Params(autoencoder={"lr": 0.01}), "autoencoder", None, 0, Layout(tmp_path), torch.device("cpu")
    )
    assert other.config_hash(original) != ctx.config_hash(original)  # a declared param is part of the identity


def write_unreadable_images(root: Path) -> None:
    """A zero-byte file, a truncated PNG and text named .png among the readable images."""
    from PIL import Image

    (root / "train" / "cat" / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (20, 14), (10, 200, 10)).save(root / "train" / "cat" / "whole.png")
    data = (root / "train" / "cat" / "whole.png").read_bytes()
    (root / "train" / "dog" / "truncated.png").write_bytes(data[: len(data) // 2])
    (root / "test" / "dog" / "notes.png").write_text("not an image")


def test_unreadable_images_are_counted_where_a_user_looks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "data", per_class=6)
    write_unreadable_images(tmp_path / "data")
    params = image_folder_params(tmp_path)
    result = gsimclr(params, "prepare")
    assert result.exit_code == 0, result.output
    assert "3 unreadable image file(s) left out (first: " in result.output
    meta = json.loads(next((tmp_path / "prepared").glob("*/meta.json")).read_text())
    assert meta["unreadable"] == 3 and len(meta["unreadable_examples"]) == 3
    assert any(path.endswith("empty.jpg") for path in meta["unreadable_examples"])
    result = gsimclr(params, "autoencoder")  # a stage's run record and MLflow run carry the count
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "runs" / "seed0" / "autoencoder.json").read_text())["unreadable_images"] == 3
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.stage = 'autoencoder'")
    assert run.data.tags["unreadable_images_left_out"] == "3"


def test_on_unreadable_error_stops_prepare_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "data", per_class=6)
    write_unreadable_images(tmp_path / "data")
    params = params_with(
        tmp_path,
        data={"name": "imagefolder", "root": str(tmp_path / "data"), "image_size": 8, "on_unreadable": "error"},
    )
    one_line_error(gsimclr(params, "prepare"), "unreadable image")
    assert not (tmp_path / "prepared").exists()
