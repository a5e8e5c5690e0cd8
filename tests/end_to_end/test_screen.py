"""`evaluate --screen`: a pretrained model's linear probes on the validation split only, to choose variants."""

import json
from dataclasses import replace

import torch
from conftest import TINY_PARAMS, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.stages.context import StageContext

runner = CliRunner()


def test_screening_reads_the_validation_split_only_and_agrees_with_evaluate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = {**TINY_PARAMS["data"], "val_fraction": 0.1, "test_fraction": 0.7}
    write_params(tmp_path / "params.yaml", dict(TINY_PARAMS, data=data))
    base = ["--device", "cpu"]
    assert runner.invoke(app, [*base, "pretrain", "--method", "simclr"]).exit_code == 0
    evaluated = runner.invoke(app, [*base, "evaluate", "--method", "simclr"])
    assert evaluated.exit_code == 0, evaluated.output
    full = json.loads((tmp_path / "metrics" / "seed0" / "evaluate_simclr.json").read_text())

    load = StageContext.dataset  # screening must not need the test split: hand it noise instead

    def with_noise_for_a_test_split(ctx: StageContext):
        data = load(ctx)
        return replace(data, test_x=torch.randint_like(data.test_x, 255), test_y=torch.zeros_like(data.test_y))

    monkeypatch.setattr(StageContext, "dataset", with_noise_for_a_test_split)
    screened = runner.invoke(app, [*base, "evaluate", "--method", "simclr", "--screen"])
    assert screened.exit_code == 0, screened.output
    scores = json.loads((tmp_path / "metrics" / "seed0" / "screen_simclr.json").read_text())
    for tap in ("P1", "P2", "P3"):
        assert scores[f"linear_{tap}/val_acc"] == full[f"linear_{tap}/val_acc"]
        assert scores[f"linear_{tap}/C"] == full[f"linear_{tap}/C"]
    assert "linear_P3/val_acc" in screened.output


def test_screening_a_control_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", TINY_PARAMS)
    result = runner.invoke(app, ["evaluate", "--method", "pixels", "--screen"])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        "error: --screen evaluates a network (--method simclr, gsimclr or random_init), not pixels"
    ]
