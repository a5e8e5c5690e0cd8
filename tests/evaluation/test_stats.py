"""Seed statistics behind `compare`'s verdicts: the interval must match the textbook and the verdict must
be able to go either way."""

import math

import pytest

from gsimclr.evaluation.stats import paired_difference, summarize, verdict


def test_interval_is_the_student_t_interval():
    # mean 2, sample sd 1, n 3 -> t_{0.975, 2} = 4.3027 -> half width 4.3027 / sqrt(3) = 2.4841
    summary = summarize([1.0, 2.0, 3.0])
    assert summary.mean == pytest.approx(2.0)
    assert summary.half_width == pytest.approx(2.4841, abs=1e-4)
    assert str(summary) == "2.00 ± 2.48"


def test_one_seed_has_no_interval_and_no_verdict():
    summary = summarize([41.5])
    assert math.isnan(summary.half_width) and str(summary) == "41.50"
    assert verdict(paired_difference([42.0], [41.0]), "G", "S") == "one seed: cannot tell"


def test_consistent_gain_is_called_a_gain():
    difference = paired_difference([52.0, 55.1, 60.2], [50.0, 53.0, 58.0])  # +2.0, +2.1, +2.2
    assert difference.mean == pytest.approx(2.1)
    assert verdict(difference, "G-SimCLR", "SimCLR") == "G-SimCLR better"


def test_consistent_loss_is_called_a_loss():
    assert verdict(paired_difference([48.0, 50.9, 55.8], [50.0, 53.0, 58.0]), "G-SimCLR", "SimCLR") == "SimCLR better"


def test_gain_within_seed_noise_is_called_noise():
    # Same mean gain (+2.1) as above but the per-seed differences straddle zero.
    difference = paired_difference([55.0, 50.3, 61.0], [50.0, 53.0, 57.0])
    assert difference.mean == pytest.approx(2.1)
    assert verdict(difference, "G-SimCLR", "SimCLR") == "not distinguishable from seed noise"


def test_pairing_needs_the_same_seeds():
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        summarize([])


def test_collapsed_pretraining_runs_are_named():
    from gsimclr.outputs.metrics import PretrainMetrics
    from gsimclr.reporting.report import collapse_warning, collapsed_runs
    from gsimclr.reporting.rows import SeedOutputs

    def pretrain(loss: float) -> PretrainMetrics:
        return PretrainMetrics(loss=loss, same_class_pairs_per_batch=0.0, epochs=1, processes=1)

    def seed(number, simclr_loss, gsimclr_loss):
        cluster = None  # not read by the collapse check
        return SeedOutputs(
            number, {}, cluster, {"simclr": pretrain(simclr_loss), "gsimclr": pretrain(gsimclr_loss)}, {}
        )

    outputs = [seed(0, 4.82, 2.8), seed(1, 1.9, 4.82), seed(2, 3.1, 2.0)]  # ln(127) = 4.844
    assert collapsed_runs(outputs, 64) == ["SimCLR seed 0", "G-SimCLR seed 1"]
    assert "Collapsed pretraining" in collapse_warning(outputs, 64)[0]
    assert collapse_warning([seed(0, 3.0, 2.9)], 64) == []
