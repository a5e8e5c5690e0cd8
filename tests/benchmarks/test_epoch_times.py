"""The study-timing reader leaves out exactly the intervals that hold a stop, and finds each loop's loss key."""

import pytest

from benchmarks.epoch_times import epoch_times, loss_key

MINUTE = 60_000


def test_intervals_holding_a_stop_are_left_out_and_the_run_is_projected_from_the_rest() -> None:
    # 6 epochs 8 minutes apart, with a 75-minute stop before the 4th; order of the stamps does not matter
    stamps = [0, 8, 16, 16 + 75 + 8, 16 + 75 + 16, 16 + 75 + 24]
    times = epoch_times([s * MINUTE for s in reversed(stamps)], gap=2.5)
    assert times.kept == [8.0, 8.0, 8.0, 8.0]
    assert times.left_out == [83.0]
    assert times.projected == 6 * 8.0


def test_slow_epochs_under_the_gap_are_kept() -> None:
    # the kNN monitor makes every second epoch 1.5x longer: that is compute, not a stop
    stamps = [0, 8, 20, 28, 40]
    assert epoch_times([s * MINUTE for s in stamps], gap=2.5).left_out == []


def test_one_epoch_cannot_be_timed() -> None:
    with pytest.raises(ValueError, match="two epochs"):
        epoch_times([0], gap=2.5)


def test_loss_key_is_the_epoch_loss_of_the_loop() -> None:
    assert loss_key(["epoch/knn_val_acc", "epoch/loss", "loss"]) == "epoch/loss"
    assert loss_key(["finetune/epoch/loss", "finetune/epoch/val_acc", "P3"]) == "finetune/epoch/loss"
    assert loss_key(["P1", "P2", "clusters"]) is None
