"""Options of `pretrain`: bf16 autocast must still train; every guidance option must reach the G-SimCLR arm only."""

import json

import pytest
import torch
from conftest import TINY_PARAMS, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
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


def run_pretrain(tmp_path, method: str, guidance: dict, epochs: int = 1):
    params = write_params(
        tmp_path / "params.yaml",
        dict(TINY_PARAMS, pretrain={**TINY_PARAMS["pretrain"], "epochs": epochs}, guidance=guidance),
    )
    return CliRunner().invoke(app, ["--params", str(params), "--device", "cpu", "pretrain", "--method", method])


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
