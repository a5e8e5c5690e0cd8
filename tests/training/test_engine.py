"""The shared training loop: resume is bit-identical, divergence stops with the last good checkpoint kept."""

import io

import numpy as np
import pytest
import torch
from torch import nn

from gsimclr.method.samplers import epoch_rng, shuffled_batches
from gsimclr.system.errors import TrainingDivergedError
from gsimclr.training.engine import LoopConfig, Training, fit
from gsimclr.training.heartbeat import Heartbeat

X = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
Y = X @ torch.randn(5, 1, generator=torch.Generator().manual_seed(1))


def make_run(lr: float = 0.05):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4 * 8)

    def step(idx: np.ndarray):
        return {"loss": nn.functional.mse_loss(model(X[idx]), Y[idx])}

    run = Training(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        batches=lambda epoch: shuffled_batches(np.arange(64), 8, epoch_rng(0, epoch)),
        step=step,
    )
    return model, run


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    model_a, run_a = make_run()
    fit(run_a, LoopConfig("a", epochs=4, seed=0))

    checkpoint = tmp_path / "resume.pt"
    _, run_b = make_run()
    fit(run_b, LoopConfig("b", epochs=2, seed=0, checkpoint=checkpoint, config_hash="h"))
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2  # as if killed after epoch 2 of 4
    model_c, run_c = make_run()
    result = fit(run_c, LoopConfig("c", epochs=4, seed=0, checkpoint=checkpoint, config_hash="h"))
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    for a, c in zip(model_a.state_dict().values(), model_c.state_dict().values(), strict=True):
        assert torch.equal(a, c)


def test_checkpoint_of_another_config_is_not_resumed(tmp_path):
    checkpoint = tmp_path / "resume.pt"
    _, run = make_run()
    fit(run, LoopConfig("x", epochs=1, seed=0, checkpoint=checkpoint, config_hash="old"))
    _, run = make_run()
    result = fit(run, LoopConfig("x", epochs=2, seed=0, checkpoint=checkpoint, config_hash="new"))
    assert len(result.history) == 2


def test_divergence_stops_and_names_the_epoch(tmp_path):
    _, run = make_run(lr=1e6)
    with pytest.raises(TrainingDivergedError, match=r"epoch .*lower learning rate"):
        fit(run, LoopConfig("boom", epochs=20, seed=0, checkpoint=tmp_path / "c.pt", config_hash="h"))


def test_early_stopping_restores_the_best_epoch():
    model, run = make_run()
    scores = iter([0.5, 0.9, 0.6, 0.4, 0.3, 0.2])
    run.validate = lambda epoch: {"val_acc": next(scores)}
    snapshots = []
    run.on_epoch = lambda epoch, metrics: snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
    result = fit(run, LoopConfig("es", epochs=6, seed=0, monitor="val_acc", mode="max", patience=2))
    assert result.best_epoch == 2 and result.stopped_early and len(result.history) == 4
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][key])


def test_checkpoint_interval_saves_every_nth_epoch_and_the_last(tmp_path):
    checkpoint = tmp_path / "resume.pt"
    saved = []
    _, run = make_run()
    run.on_epoch = lambda epoch, metrics: saved.append(
        torch.load(checkpoint, weights_only=True)["epoch"] if checkpoint.exists() else None
    )
    fit(run, LoopConfig("x", epochs=5, seed=0, checkpoint=checkpoint, checkpoint_every=2, config_hash="h"))
    # on_epoch (the logger) runs after that epoch's save: a failing logger cannot lose the epoch
    assert saved == [None, 2, 2, 4, 5]
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 5


def test_the_epoch_log_needs_no_checkpoint_to_have_made_its_folder(tmp_path):
    folder = tmp_path / "checkpoints" / "seed0"  # made by the first checkpoint, due only at epoch 3
    _, run = make_run()
    loop = LoopConfig("x", epochs=2, seed=0, checkpoint=folder / "c.pt", log_file=folder / "x.log.jsonl")
    loop.checkpoint_every, loop.config_hash = 3, "h"
    fit(run, loop)
    assert len((folder / "x.log.jsonl").read_text().splitlines()) == 2


def test_without_a_terminal_an_epoch_prints_progress_lines_with_speed_and_eta(capsys):
    """A log file gets a line inside each epoch (here every step: `heartbeat_s=0`), not only the epoch's own."""
    _, run = make_run()
    fit(run, LoopConfig("hb", epochs=2, seed=0, heartbeat_s=0.0))
    lines = capsys.readouterr().err.splitlines()
    steps = len(run.batches(1))
    inside = [line for line in lines if " step " in line]
    assert len(inside) == 2 * (steps - 1)  # the last step of an epoch is the epoch's own line
    assert inside[0].startswith(f"hb epoch 1/2 step 1/{steps} ") and "images/s, epoch ETA " in inside[0]
    assert sum(line.startswith("hb epoch 2/2 loss=") for line in lines) == 1


def test_the_heartbeat_waits_its_interval_and_estimates_the_time_left():
    ticks = iter([0.0, 30.0, 61.0, 90.0, 125.0])  # started, then after steps 1..4
    out = io.StringIO()
    beat = Heartbeat("pretrain", 3, 10, steps=8, every_s=60.0, clock=lambda: next(ticks), out=out)
    for step in range(1, 5):
        beat.step(step, images=64)
    lines = out.getvalue().splitlines()
    assert lines == [
        "pretrain epoch 3/10 step 2/8 2 images/s, epoch ETA 3:03",  # 61 s for 2 steps: 6 more take 183 s
        "pretrain epoch 3/10 step 4/8 2 images/s, epoch ETA 2:05",
    ]
