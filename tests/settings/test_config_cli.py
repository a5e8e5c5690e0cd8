"""Bad input: one line, a non-zero exit code, no traceback, nothing overwritten."""

from dataclasses import replace

import pytest
import torch
import yaml
from conftest import TINY_PARAMS, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.pipeline.layout import Layout
from gsimclr.settings.config import Params
from gsimclr.settings.loading import load_params
from gsimclr.stages.context import StageContext
from gsimclr.system.errors import UserError

runner = CliRunner()


def with_change(section: str, key: str, value) -> dict:
    params = yaml.safe_load(yaml.safe_dump(TINY_PARAMS))
    params[section][key] = value
    return params


@pytest.mark.parametrize(
    "section,key,value,expected",
    [
        ("pretrain", "batchsize", 64, "pretrain.batchsize: unknown key"),
        ("pretrain", "epochs", "ten", "pretrain.epochs: Input should be a valid integer"),
        ("pretrain", "lr", -0.1, "pretrain.lr: Input should be greater than 0"),
        ("cluster", "k", 0, "cluster.k: Input should be greater than or equal to 2"),
        ("data", "name", "mnist", "data.name: Input should be 'digits', 'cifar10' or 'imagefolder'"),
        ("guidance", "tau_plus", 1.0, "guidance.tau_plus: Input should be less than 1"),
        ("guidance", "refresh_every", -2, "guidance.refresh_every: Input should be greater than or equal to 0"),
    ],
)
def test_bad_params_name_the_key(tmp_path, section, key, value, expected):
    path = write_params(tmp_path / "params.yaml", with_change(section, key, value))
    with pytest.raises(UserError) as error:
        load_params(path)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_every_problem_of_a_params_file_is_listed_on_one_line(tmp_path):
    params = with_change("pretrain", "lr", -1)
    params["pretrain"]["epochs"] = 0
    params["cluster"]["kk"] = 3
    with pytest.raises(UserError) as error:
        load_params(write_params(tmp_path / "params.yaml", params))
    message = str(error.value)
    assert "\n" not in message
    for problem in (
        "pretrain.lr: Input should be greater than 0",
        "pretrain.epochs: Input should be greater than 0",
        "cluster.kk: unknown key",
    ):
        assert problem in message


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"gsimclr {version('gsimclr')}"


def test_refreshing_labels_nothing_uses_is_refused(tmp_path):
    params = with_change("guidance", "refresh_every", 5)
    params["guidance"].update(batches="random", false_negatives="debiased")
    with pytest.raises(UserError, match=r"guidance\.refresh_every needs pseudo labels to be used"):
        load_params(write_params(tmp_path / "params.yaml", params))


def test_cli_config_error_exits_2_without_traceback(tmp_path):
    path = write_params(tmp_path / "params.yaml", with_change("autoencoder", "epochs", -1))
    result = runner.invoke(app, ["--params", str(path), "train"])
    assert result.exit_code == 2
    assert "autoencoder.epochs" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_params_file_and_invalid_yaml(tmp_path):
    assert runner.invoke(app, ["--params", str(tmp_path / "none.yaml"), "cluster"]).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [unclosed\n")
    result = runner.invoke(app, ["--params", str(bad), "cluster"])
    assert result.exit_code == 2 and "not valid YAML" in result.output


def test_gsimclr_without_pseudo_labels_exits_3(tmp_path, tiny_params, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["--params", str(tiny_params), "--device", "cpu", "pretrain", "--method", "gsimclr"])
    assert result.exit_code == 3
    assert "gsimclr cluster" in result.output and "Traceback" not in result.output


def test_pseudo_labels_of_the_wrong_length_are_refused(tmp_path, tiny_params, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labels = Layout().for_seed(0).pseudo_labels
    labels.parent.mkdir(parents=True)
    labels.write_text("index,cluster\n0,1\n1,0\n")
    result = runner.invoke(app, ["--params", str(tiny_params), "pretrain", "--method", "gsimclr"])
    assert result.exit_code == 2 and "re-run `gsimclr cluster`" in result.output


def test_unknown_device_and_unknown_method(tiny_params):
    assert runner.invoke(app, ["--params", str(tiny_params), "--device", "tpu", "autoencoder"]).exit_code == 2
    assert runner.invoke(app, ["pretrain", "--method", "moco"]).exit_code == 2


def test_every_subcommand_has_help_with_an_example():
    for command in ("autoencoder", "cluster", "pretrain", "evaluate", "compare", "study"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example: gsimclr" in result.output


@pytest.mark.parametrize("name", ["params.yaml", "pipelines/cifar10.yaml", "pipelines/imagenet5.yaml"])
def test_shipped_parameter_sets_are_valid(name):
    from conftest import REPO

    assert isinstance(load_params(REPO / name), Params)


def test_a_seed_outside_params_seeds_is_refused(tiny_params):
    result = runner.invoke(app, ["--params", str(tiny_params), "--seed", "7", "autoencoder"])
    assert result.exit_code == 2 and "not one of params `seeds` [0]" in result.output


def test_a_validation_split_smaller_than_the_class_count_is_a_user_error(tmp_path, monkeypatch):
    from conftest import TINY_PARAMS, write_params

    monkeypatch.chdir(tmp_path)
    params = write_params(
        tmp_path / "params.yaml", dict(TINY_PARAMS, data={**TINY_PARAMS["data"], "val_fraction": 0.001})
    )
    result = runner.invoke(app, ["--params", str(params), "evaluate", "--method", "supervised"])
    assert result.exit_code == 2 and "cannot carve a validation split" in result.output


GUIDANCE_ERRORS = {
    "refresh longer than the run": (
        {"labels": "network", "false_negatives": "cancel", "refresh_every": 3},
        "guidance.refresh_every=3 is longer than the run: 2 guided epochs",
    ),
    "warm-up as long as the run": (
        {"labels": "network", "false_negatives": "cancel", "refresh_every": 1, "warmup_epochs": 2},
        "guidance.warmup_epochs=2 leaves none of pretrain.epochs=2 guided",
    ),
    "network labels never clustered": ({"labels": "network"}, "guidance.labels=network re-clusters"),
    "oracle refreshed": ({"labels": "oracle", "refresh_every": 1}, "guidance.labels=oracle uses the true labels"),
    "oracle used by nothing": (
        {"labels": "oracle", "batches": "random"},
        "guidance.labels=oracle needs pseudo labels to be used",
    ),
    "neighbours with guided batches": (
        {"labels": "neighbours", "false_negatives": "attract"},
        "guidance.labels=neighbours flags pairs inside each batch",
    ),
    "neighbours used by nothing": (
        {"labels": "neighbours", "batches": "random"},
        "guidance.labels=neighbours needs pseudo labels to be used",
    ),
    "a whole batch of neighbours": (
        {"labels": "neighbours", "batches": "random", "false_negatives": "cancel", "neighbours": 16},
        "guidance.neighbours=16 suspects per image needs more other images in a batch",
    ),
    "k above the training set": (
        {"labels": "network", "false_negatives": "cancel", "refresh_every": 1, "refresh_k": 5000},
        "guidance.refresh_k (or cluster.k) = 5000 is larger than the 1437 training images",
    ),
}


@pytest.mark.parametrize("case", GUIDANCE_ERRORS)
def test_bad_guidance_is_one_line_before_anything_is_written(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    guidance, expected = GUIDANCE_ERRORS[case]
    params = dict(TINY_PARAMS, guidance=guidance)
    write_params(tmp_path / "params.yaml", params)
    result = runner.invoke(app, ["--device", "cpu", "pretrain", "--method", "gsimclr"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and expected in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_the_oracle_needs_a_labelled_training_split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    load = StageContext.dataset
    monkeypatch.setattr(
        StageContext, "dataset", lambda ctx: replace(load(ctx), train_y=torch.zeros_like(load(ctx).train_y))
    )
    write_params(
        tmp_path / "params.yaml", dict(TINY_PARAMS, guidance={"labels": "oracle", "false_negatives": "cancel"})
    )
    result = runner.invoke(app, ["--device", "cpu", "pretrain", "--method", "gsimclr"])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        "error: guidance.labels=oracle needs a training split labelled with at least two classes"
    ], result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_a_run_without_a_pool_keeps_the_identity_it_had_before_pools_existed():
    """Checkpoints and MLflow params key on the dumped settings: an unset `data.pool` is not in them."""
    plain = Params.model_validate(TINY_PARAMS).model_dump(mode="json")["data"]
    assert "pool" not in plain
    data = {**TINY_PARAMS["data"], "name": "imagefolder", "root": "labelled", "pool": "photos"}
    assert Params.model_validate({**TINY_PARAMS, "data": data}).model_dump(mode="json")["data"]["pool"] == "photos"
