"""Speed options of `pretrain` that change numerics: bf16 autocast must still train (finite, decreasing loss)."""

import json

from typer.testing import CliRunner

from conftest import TINY_PARAMS, write_params
from gsimclr.cli import app


def test_bf16_autocast_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml",
                          dict(TINY_PARAMS, pretrain={**TINY_PARAMS["pretrain"], "epochs": 3, "precision": "bf16"}))
    result = CliRunner().invoke(app, ["--params", str(params), "--device", "cpu", "pretrain", "--method", "simclr"])
    assert result.exit_code == 0, result.output
    losses = [json.loads(line)["loss"] for line in
              (tmp_path / "checkpoints" / "seed0" / "pretrain_simclr.log.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0]


def run_pretrain(tmp_path, method: str, guidance: dict):
    params = write_params(tmp_path / "params.yaml",
                          dict(TINY_PARAMS, pretrain={**TINY_PARAMS["pretrain"], "epochs": 1}, guidance=guidance))
    return CliRunner().invoke(app, ["--params", str(params), "--device", "cpu", "pretrain", "--method", method])


def test_guidance_options_apply_to_the_gsimclr_arm_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # SimCLR never reads pseudo labels, whatever the guidance section says
    assert run_pretrain(tmp_path, "simclr", {"false_negatives": "cancel"}).exit_code == 0
    labels = tmp_path / "artifacts" / "seed0" / "pseudo_labels.csv"
    labels.write_text("index,cluster\n" + "".join(f"{i},{i % 16}\n" for i in range(1437)))
    losses = {}
    for mode in ("keep", "cancel", "attract"):
        result = run_pretrain(tmp_path, "gsimclr", {"batches": "random", "false_negatives": mode})
        assert result.exit_code == 0, result.output
        losses[mode] = json.loads((tmp_path / "metrics" / "seed0" / "pretrain_gsimclr.json").read_text())["loss"]
    assert len(set(losses.values())) == 3  # the option reaches the loss
