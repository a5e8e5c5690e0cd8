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
