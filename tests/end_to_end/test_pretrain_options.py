"""Options of `pretrain`: bf16 autocast must still train; every guidance option must reach the G-SimCLR arm only."""

import json
from dataclasses import replace

import pytest
import torch
from conftest import TINY_PARAMS, write_params
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.stages.context import StageContext
from gsimclr.training.device import resolve_precision


def test_bf16_autocast_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # A fifth of the digits to train on (test_fraction 0.7): CPUs without native bf16 (the AVX2 EPYCs) emulate
    # its convolutions, and three epochs of the full training split took 200 s on one (shared with a study run).
    params = write_params(
        tmp_path / "params.yaml",
        dict(
            TINY_PARAMS,
            data={**TINY_PARAMS["data"], "val_fraction": 0.1, "test_fraction": 0.7},
            pretrain={**TINY_PARAMS["pretrain"], "epochs": 3, "precision": "bf16"},
        ),
    )
    result = CliRunner().invoke(app, ["--params", str(params), "--device", "cpu", "pretrain", "--method", "simclr"])
    assert result.exit_code == 0, result.output
    losses = [
        json.loads(line)["loss"]
        for line in (tmp_path / "checkpoints" / "seed0" / "pretrain_simclr.log.jsonl").read_text().splitlines()
    ]
    assert len(losses) == 3 and losses[-1] < losses[0]


FIFTH_OF_THE_DIGITS = {**TINY_PARAMS["data"], "val_fraction": 0.1, "test_fraction": 0.7}
"""359 training images: for tests that compare whole runs, not how well they learn."""


def run_pretrain(tmp_path, method: str, guidance: dict, epochs: int = 1, restart: bool = False, data=None):
    params = write_params(
        tmp_path / "params.yaml",
        dict(
            TINY_PARAMS,
            data=data or TINY_PARAMS["data"],
            pretrain={**TINY_PARAMS["pretrain"], "epochs": epochs},
            guidance=guidance,
        ),
    )
    command = ["--params", str(params), "--device", "cpu", "pretrain", "--method", method]
    return CliRunner().invoke(app, command + ["--restart"] * restart)


def write_arbitrary_pseudo_labels(tmp_path) -> None:
    """Labels i mod 16 for the 1437 training images: no relation to the digits in them."""
    labels = tmp_path / "artifacts" / "seed0" / "pseudo_labels.csv"
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text("index,cluster\n" + "".join(f"{i},{i % 16}\n" for i in range(1437)))


def test_guidance_options_apply_to_the_gsimclr_arm_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # SimCLR never reads pseudo labels, whatever the guidance section says
    assert run_pretrain(tmp_path, "simclr", {"false_negatives": "cancel"}).exit_code == 0
    write_arbitrary_pseudo_labels(tmp_path)
    losses = {}
    for mode in ("keep", "cancel", "attract", "debiased"):
        result = run_pretrain(tmp_path, "gsimclr", {"batches": "random", "false_negatives": mode})
        assert result.exit_code == 0, result.output
        losses[mode] = json.loads((tmp_path / "metrics" / "seed0" / "pretrain_gsimclr.json").read_text())["loss"]
    assert len(set(losses.values())) == 4  # the option reaches the loss


def test_an_arm_that_reads_no_labels_needs_no_cluster_table(tmp_path, monkeypatch):
    """Random batches with `keep` are SimCLR, step for step; with the debiased loss (Chuang et al. 2020) a loss that
    needs no labels: neither reads the `cluster` stage's table, so neither needs one."""
    monkeypatch.chdir(tmp_path)
    losses = {}
    for method, mode in (("simclr", "keep"), ("gsimclr", "keep"), ("gsimclr", "debiased")):
        result = run_pretrain(tmp_path, method, {"batches": "random", "false_negatives": mode})
        assert result.exit_code == 0, result.output
        metrics = json.loads((tmp_path / "metrics" / "seed0" / f"pretrain_{method}.json").read_text())
        losses[method, mode] = metrics["loss"]
    assert not (tmp_path / "artifacts" / "seed0" / "pseudo_labels.csv").exists()
    assert losses["gsimclr", "keep"] == losses["simclr", "keep"] != losses["gsimclr", "debiased"]


def test_refreshed_pseudo_labels_come_from_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_arbitrary_pseudo_labels(tmp_path)
    result = run_pretrain(tmp_path, "gsimclr", {"batches": "guided", "refresh_every": 1}, epochs=3)
    assert result.exit_code == 0, result.output
    log = (tmp_path / "checkpoints" / "seed0" / "pretrain_gsimclr.log.jsonl").read_text().splitlines()
    nmi = [json.loads(line)["pseudo_label_nmi"] for line in log]
    # epoch 1 is guided by the arbitrary table; from epoch 2 on, by k-means on the model's embeddings of
    # digits, which agree with the true digits far better than i mod 16 does
    assert nmi[0] < 0.05 and min(nmi[1:]) > nmi[0] + 0.2, nmi


def test_the_standard_recipe_trains_and_the_knn_monitor_writes_its_curve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = {
        **TINY_PARAMS["pretrain"],
        "epochs": 4,
        "warmup_epochs": 1,
        "lr_scaling": "linear",
        "lr": 0.3,
        "decay_norm_and_bias": False,
        "knn": {"every": 2, "k": 5},
        "augment": {**TINY_PARAMS["pretrain"]["augment"], "blur_p": 0.5},
    }
    params = write_params(tmp_path / "params.yaml", dict(TINY_PARAMS, pretrain=recipe))
    result = CliRunner().invoke(app, ["--params", str(params), "--device", "cpu", "pretrain", "--method", "simclr"])
    assert result.exit_code == 0, result.output
    history = [
        json.loads(line)
        for line in (tmp_path / "checkpoints" / "seed0" / "pretrain_simclr.log.jsonl").read_text().splitlines()
    ]
    assert [("knn_val_acc" in epoch) for epoch in history] == [False, True, False, True]
    assert history[0]["lr"] == pytest.approx(0.3 * 16 / 256)  # end of the 1-epoch warm-up: the scaled lr
    curve = (tmp_path / "plots" / "seed0" / "pretrain_simclr_knn.csv").read_text().splitlines()
    assert curve[0] == "epoch,knn_val_acc" and [row.split(",")[0] for row in curve[1:]] == ["2", "4"]
    assert all(0.1 < float(row.split(",")[1]) <= 1.0 for row in curve[1:])  # above chance on digits
    # switched off, the curve file is rewritten empty rather than left stale
    params = write_params(
        tmp_path / "params.yaml",
        dict(TINY_PARAMS, pretrain={**recipe, "epochs": 1, "warmup_epochs": 0, "knn": {"every": 0}}),
    )
    assert (
        CliRunner()
        .invoke(app, ["--params", str(params), "--device", "cpu", "pretrain", "--method", "simclr"])
        .exit_code
        == 0
    )
    assert (tmp_path / "plots" / "seed0" / "pretrain_simclr_knn.csv").read_text().splitlines() == ["epoch,knn_val_acc"]


def test_auto_precision_is_bf16_only_where_the_device_computes_it_natively(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda native=native: native)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        assert resolve_precision("auto", cpu) == expected
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the private checks: fp32
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("auto", torch.device("meta")) == "fp32"


def training_losses(tmp_path) -> list[float]:
    log = tmp_path / "checkpoints" / "seed0" / "pretrain_gsimclr.log.jsonl"
    return [json.loads(line)["loss"] for line in log.read_text().splitlines()]


LABEL_SOURCES = {
    "network": {"labels": "network", "false_negatives": "attract", "warmup_epochs": 1, "refresh_every": 1},
    "neighbours": {"labels": "neighbours", "batches": "random", "false_negatives": "attract", "warmup_epochs": 1},
    "oracle": {"labels": "oracle", "batches": "random", "false_negatives": "attract"},
}


def shuffle_training_labels(monkeypatch) -> None:
    """Every stage from now on sees the training labels in another order (the images stay where they are)."""
    load = StageContext.dataset

    def with_shuffled_labels(ctx: StageContext):
        data = load(ctx)
        order = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))
        return replace(data, train_y=data.train_y[order])

    monkeypatch.setattr(StageContext, "dataset", with_shuffled_labels)


@pytest.mark.parametrize("source", LABEL_SOURCES)
def test_only_the_oracle_trains_on_the_true_labels(tmp_path, monkeypatch, source):
    """The same run with the training labels shuffled: a label-free source trains exactly as before (the labels
    only measure: kNN, diagnostics), the oracle bound does not."""
    monkeypatch.chdir(tmp_path)
    first = run_pretrain(tmp_path, "gsimclr", LABEL_SOURCES[source], epochs=2, data=FIFTH_OF_THE_DIGITS)
    assert first.exit_code == 0, first.output
    shuffle_training_labels(monkeypatch)
    again = run_pretrain(tmp_path, "gsimclr", LABEL_SOURCES[source], epochs=2, restart=True, data=FIFTH_OF_THE_DIGITS)
    assert again.exit_code == 0, again.output
    losses = training_losses(tmp_path)  # the log keeps both runs
    assert (losses[:2] == losses[2:]) == (source != "oracle"), losses
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    run = client.search_runs([e.experiment_id for e in client.search_experiments()])[0]
    named = run.info.run_name.startswith("oracle_bound-pretrain-gsimclr")
    metrics_named = all(key.startswith("oracle_bound/") for key in run.data.metrics)
    assert named == metrics_named == (source == "oracle"), (run.info.run_name, sorted(run.data.metrics)[:3])
    registered = {m.name for m in client.search_registered_models()}
    assert ("gsimclr-digits-oracle_bound-gsimclr" in registered) == (source == "oracle"), registered


def test_network_labels_train_as_simclr_until_the_warm_up_ends(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    guidance = {"labels": "network", "false_negatives": "cancel", "warmup_epochs": 2, "refresh_every": 1}
    result = run_pretrain(tmp_path, "gsimclr", guidance, epochs=3, data=FIFTH_OF_THE_DIGITS)
    assert result.exit_code == 0, result.output  # no autoencoder table needed
    log = [json.loads(line) for line in (tmp_path / "checkpoints" / "seed0" / "pretrain_gsimclr.log.jsonl").open()]
    assert run_pretrain(tmp_path, "simclr", {}, epochs=3, data=FIFTH_OF_THE_DIGITS).exit_code == 0
    simclr = [json.loads(line) for line in (tmp_path / "checkpoints" / "seed0" / "pretrain_simclr.log.jsonl").open()]
    assert [r["loss"] for r in log[:2]] == [r["loss"] for r in simclr[:2]]  # the warm-up is SimCLR, step for step
    assert "pseudo_label_nmi" not in log[1] and log[2]["pseudo_label_nmi"] > 0.2
    assert log[2]["same_class_negatives_per_batch"] < log[2]["same_class_pairs_per_batch"]
    assert 0.0 < log[2]["false_negatives_removed"] <= 1.0 and 0.0 < log[2]["pseudo_pair_precision"] <= 1.0


def test_in_batch_neighbours_train_as_simclr_until_the_warm_up_ends_then_act_on_scored_suspects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    guidance = {"labels": "neighbours", "batches": "random", "false_negatives": "cancel", "warmup_epochs": 1}
    result = run_pretrain(tmp_path, "gsimclr", guidance | {"neighbours": 3}, epochs=2, data=FIFTH_OF_THE_DIGITS)
    assert result.exit_code == 0, result.output  # no autoencoder table needed
    log = [json.loads(line) for line in (tmp_path / "checkpoints" / "seed0" / "pretrain_gsimclr.log.jsonl").open()]
    assert run_pretrain(tmp_path, "simclr", {}, epochs=2, data=FIFTH_OF_THE_DIGITS).exit_code == 0
    simclr = [json.loads(line) for line in (tmp_path / "checkpoints" / "seed0" / "pretrain_simclr.log.jsonl").open()]
    assert log[0]["loss"] == simclr[0]["loss"] and log[1]["loss"] != simclr[1]["loss"]
    assert log[0]["same_class_negatives_per_batch"] == log[0]["same_class_pairs_per_batch"]
    assert "pseudo_pair_precision" not in log[0]
    assert 0.1 < log[1]["pseudo_pair_precision"] <= 1.0  # digits: 10 classes, so chance is about 0.1
    assert 0.0 < log[1]["false_negatives_removed"] < 1.0
    assert log[1]["same_class_negatives_per_batch"] < log[1]["same_class_pairs_per_batch"]
