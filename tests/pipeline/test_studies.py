"""The paper's study files: `gsimclr study` turns each into exactly that params.yaml, and each runs end to end.

The smoke runs keep each study's architecture, autoencoder and augmentations and shrink only what
sets the cost (epochs, k = batch size, the 224 px resolution) so that they fit the CI budget.
"""

import copy
import csv
import shutil

import pytest
import yaml
from conftest import REPO, STUDY_COMMANDS, write_cifar_fixture, write_image_folder, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.pipeline.study import exp_run_command, leaves, overrides

runner = CliRunner()
STUDIES = ["cifar10", "cifar10-cpu", "cifar10-gpu", "imagenet5", "imagenet5-cpu", "imagenet5-cpu-strong"]


@pytest.mark.parametrize("name", [*STUDIES, "own-images"])
def test_overrides_turn_params_yaml_into_the_study(tmp_path, name):
    from dvc.utils.hydra import apply_overrides

    study = REPO / "pipelines" / f"{name}.yaml"
    target = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", target)
    apply_overrides(target, overrides(study, REPO / "params.yaml"))
    # an entry params.yaml leaves null and the study omits stays null: Hydra cannot delete it, and null is its default
    applied, wanted = leaves(yaml.safe_load(target.read_text())), leaves(yaml.safe_load(study.read_text()))
    assert {key: value for key, value in applied.items() if value is not None or key in wanted} == wanted


def test_extra_overrides_win_and_the_command_is_a_named_queued_experiment(tmp_path):
    from dvc.utils.hydra import apply_overrides

    study = REPO / "pipelines" / "imagenet5-cpu.yaml"
    # data.imbalance_ratio is in neither file: a plain Hydra `key=value` would be refused for it
    extra = ["data.root=/data/imagenet-5-categories", "data.imbalance_ratio=10"]
    target = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", target)
    apply_overrides(target, overrides(study, REPO / "params.yaml", extra))
    data = yaml.safe_load(target.read_text())["data"]
    assert data["root"] == "/data/imagenet-5-categories" and data["imbalance_ratio"] == 10
    command = exp_run_command(study, REPO / "params.yaml", queue=True)
    assert command[:6] == ["dvc", "exp", "run", "--name", "imagenet5-cpu", "--queue"]
    root = write_image_folder(tmp_path / "imagenet-5-categories")
    named = runner.invoke(app, ["study", str(study), "-S", f"data.root={root}", "--name", "lt10", "--dry-run"])
    assert named.exit_code == 0 and named.output.startswith("dvc exp run --name lt10 -S "), named.output


def test_a_study_applies_its_params_runs_every_stage_and_saves_the_experiment_then_resumes(tmp_path, monkeypatch):
    """Run now: the params applied with the first stage, the stages side by side, the experiment saved. Once
    params.yaml already is the study (a re-run after an interruption), nothing is applied again."""
    from dvc.utils.hydra import apply_overrides

    from gsimclr.pipeline.repro import default_jobs
    from gsimclr.pipeline.study import already_applied

    monkeypatch.chdir(REPO)  # the first stage is read from the project's dvc.yaml
    study = REPO / "pipelines" / "imagenet5-cpu.yaml"
    root = write_image_folder(tmp_path / "imagenet-5-categories")
    extra = [f"data.root={root}"]
    fresh = runner.invoke(app, ["study", str(study), *[f"-S{item}" for item in extra], "-n", "lt10", "--dry-run"])
    lines = fresh.output.splitlines()
    assert fresh.exit_code == 0 and len(lines) == 3, fresh.output
    assert lines[0].startswith("dvc exp run --name lt10 -S ") and lines[0].endswith(" prepare")
    assert lines[1:] == [f"gsimclr repro --jobs {default_jobs()}", "dvc exp save --name lt10 --force"]
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    assert not already_applied(study, params, extra)
    apply_overrides(params, overrides(study, params, extra))
    assert already_applied(study, params, extra) and not already_applied(study, params, ["data.root=/elsewhere"])
    resumed = runner.invoke(app, ["-p", str(params), "study", str(study), f"-S{extra[0]}", "-j", "1", "--dry-run"])
    assert resumed.output.splitlines() == ["gsimclr repro --jobs 1", "dvc exp save --name imagenet5-cpu --force"]
    both = runner.invoke(app, ["study", str(study), f"-S{extra[0]}", "--queue", "--jobs", "2", "--dry-run"])
    assert both.exit_code == 2 and both.output.startswith("error: --queue runs the experiment later")


def test_a_study_with_a_typo_is_refused_before_dvc_runs(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("seeds: [0]\npretrain: {epoch: 3}\n")
    result = runner.invoke(app, ["study", str(bad), "--dry-run"])
    assert result.exit_code == 2 and "pretrain.epoch" in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["study", str(tmp_path / "nope.yaml"), "--dry-run"])
    assert missing.exit_code == 2


@pytest.mark.parametrize(
    ("name", "expected"), [("cifar10-cpu", "CIFAR-10 in ImageFolder layout"), ("imagenet5-cpu", "ImageNet Subset")]
)
def test_a_study_without_its_dataset_says_where_it_is_expected_before_dvc_runs(tmp_path, monkeypatch, name, expected):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    study = REPO / "pipelines" / f"{name}.yaml"
    for extra in ([], ["data.root=/nonexistent/cifar10"], [f"++data.root={tmp_path}"]):
        result = runner.invoke(app, ["study", str(study), *[f"-S{item}" for item in extra]])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert expected in lines[0] and "-S data.root=" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / ".dvc").exists() and not (tmp_path / "dvc.lock").exists()  # nothing ran


def smoke_params(name: str, data_root: str) -> dict:
    """The study's own sections and networks, one epoch of everything at 32 px at most (every network here takes
    32 px; ImageNet's ResNet-50 run took 73 s at 64 px and 47 s at 32, back to back on a 2-core EPYC)."""
    params = copy.deepcopy(yaml.safe_load((REPO / "pipelines" / f"{name}.yaml").read_text()))
    params["seeds"] = [0]
    params["data"] |= {"root": data_root, "image_size": min(params["data"]["image_size"], 32), "download": False}
    params["autoencoder"] |= {"epochs": 1}
    params["cluster"] |= {"k": 8, "n_init": 1, "tsne_points": 40}
    params["pretrain"] |= {"epochs": 1, "batch_size": 8, "warmup_epochs": 0}
    for trained in ("finetune", "supervised"):
        params["evaluate"][trained] |= {"epochs": 1, "patience": 1}
    params["evaluate"]["finetune_fraction"] = 0.2
    return params


@pytest.mark.parametrize("name", STUDIES)
def test_study_runs_end_to_end_on_fixture_data(tmp_path, monkeypatch, name):
    if name == "cifar10":
        write_cifar_fixture(tmp_path / "data", per_batch=30)
    else:
        write_image_folder(
            tmp_path / "data", classes=("airplane", "car", "cat", "dog", "elephant"), per_class=10, size=(72, 60)
        )
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", smoke_params(name, str(tmp_path / "data")))
    for command in STUDY_COMMANDS:
        result = runner.invoke(app, ["--params", str(params), "--device", "cpu", *command])
        assert result.exit_code == 0, f"{command}: {result.output}"
    results = (tmp_path / "results" / "results.md").read_text()
    assert "paper SimCLR" in results and "Fully supervised baseline" in results
    with (tmp_path / "results" / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    cells = {(row["method"], row["representation"]) for row in rows}
    assert cells == {("supervised", "–"), ("pixels", "pixels")} | {
        (m, rep) for m in ("simclr", "gsimclr", "random_init") for rep in ("P1", "P2", "P3", "fine-tune")
    }
    # Every accuracy is a share of the test split (a fraction); the paper column is filled for the paper's rows.
    test_size = 50 if name != "cifar10" else 30
    for row in rows:
        correct = float(row["test_acc"]) * test_size
        assert 0 <= float(row["test_acc"]) <= 1 and abs(correct - round(correct)) < 1e-6, row
    assert any(row["paper"] for row in rows if row["method"] == "simclr")
