"""Long-tailed training splits (the setting G-SimCLR is motivated by) and their balanced-accuracy report."""

import json

import numpy as np
from conftest import STUDY_COMMANDS, TINY_PARAMS, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.data.loaders import load_dataset
from gsimclr.data.splits import long_tailed_counts, long_tailed_indices
from gsimclr.settings.config import DataConfig


def test_exponential_profile_from_the_smallest_class():
    np.testing.assert_array_equal(long_tailed_counts(np.array([100, 120, 100, 130, 100]), 10), [100, 56, 31, 17, 10])
    assert long_tailed_counts(np.array([3, 3, 3]), 100).min() == 1  # every class keeps an image


def test_long_tailed_split_is_seeded_and_leaves_the_test_split_alone():
    balanced = load_dataset(DataConfig(image_size=8))
    tailed = load_dataset(DataConfig(image_size=8, imbalance_ratio=10))
    counts = np.bincount(tailed.train_y.numpy())
    assert counts[-1] == counts[0] // 10 and np.all(np.diff(counts) <= 0)
    assert len(tailed.train_y) < len(balanced.train_y)
    assert (tailed.test_y == balanced.test_y).all() and (tailed.test_x == balanced.test_x).all()
    labels = balanced.train_y.numpy()
    np.testing.assert_array_equal(long_tailed_indices(labels, 10, 0), long_tailed_indices(labels, 10, 0))
    assert not np.array_equal(long_tailed_indices(labels, 10, 0), long_tailed_indices(labels, 10, 1))


def test_compare_reports_balanced_accuracy_and_the_options_of_the_guided_arm(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the guided arm also runs two options, so the report must say which arm it compares
    params = write_params(
        tmp_path / "params.yaml",
        dict(
            TINY_PARAMS,
            data={**TINY_PARAMS["data"], "imbalance_ratio": 5},
            guidance={"batches": "guided", "false_negatives": "debiased", "tau_plus": 0.1, "refresh_every": 1},
        ),
    )
    runner = CliRunner()
    for command in STUDY_COMMANDS:
        result = runner.invoke(app, ["--params", str(params), "--device", "cpu", *command])
        assert result.exit_code == 0, f"{command}: {result.output}"
    results = (tmp_path / "results" / "results.md").read_text()
    assert "Balanced accuracy — long-tailed training split (imbalance ratio 5)" in results
    assert (
        "G-SimCLR arm: guided batches, debiased NT-Xent (tau_plus=0.1); pseudo labels from k-means (k=16) on "
        "autoencoder features, re-clustered from the model's own backbone embeddings (k=16) every 1 epochs. "
        "Training split long-tailed (imbalance ratio 5)."
    ) in results
    assert "- Pseudo labels re-clustered from the model: NMI " in results
    assert "| class | SimCLR P3 | G-SimCLR P3 |" in results
    assert sum(line.startswith(("| 0 |", "| 9 |")) for line in results.splitlines()) == 2  # digits: classes 0..9
    metrics = json.loads((tmp_path / "metrics" / "seed0" / "evaluate_gsimclr.json").read_text())
    per_class = [metrics[f"linear_P3/test_acc/class{c}"] for c in range(10)]
    assert abs(sum(per_class) / 10 - metrics["linear_P3/test_balanced_acc"]) < 1e-9
    rows = (tmp_path / "results" / "results.csv").read_text().splitlines()
    assert sum(",balanced_accuracy," in row for row in rows) == sum(",accuracy," in row for row in rows) == 14
