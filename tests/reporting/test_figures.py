"""`gsimclr figures`: the forest plot of a report's paired differences, drawn from its table alone."""

import shutil
from pathlib import Path

import pytest
from conftest import forest_points
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.evaluation.stats import paired_difference
from gsimclr.outputs.metrics import read_results
from gsimclr.reporting.figures import paired_differences
from gsimclr.reporting.rows import cell_values

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_the_forest_shows_each_paired_difference_of_the_table():
    rows = [row for row in read_results(ROOT / "results" / "cifar10-cpu" / "results.csv") if row.metric == "accuracy"]
    cells = cell_values(rows)
    points = forest_points(paired_differences(rows))
    assert len(points) == 12  # 3 comparisons x (P1, P2, P3, fine-tune)
    expected = paired_difference(cells[("gsimclr", "P3")], cells[("simclr", "P3")]).mean
    assert points["G-SimCLR − SimCLR, P3"] == pytest.approx(expected) and -0.1 < expected < 0  # -0.07, the README's
    assert points["SimCLR − untrained, fine-tune"] == pytest.approx(
        paired_difference(cells[("simclr", "fine-tune")], cells[("random_init", "fine-tune")]).mean
    )


def test_figures_redraws_beside_each_table_and_a_report_without_controls_keeps_its_arms(tmp_path):
    for name in ("cifar10-cpu", "imagenet5-cpu"):  # the second predates the untrained control
        (tmp_path / name).mkdir()
        shutil.copy(ROOT / "results" / name / "results.csv", tmp_path / name / "results.csv")
    result = runner.invoke(
        app, ["figures", *(str(tmp_path / n / "results.csv") for n in ("cifar10-cpu", "imagenet5-cpu"))]
    )
    assert result.exit_code == 0, result.output
    for name in ("cifar10-cpu", "imagenet5-cpu"):
        assert (tmp_path / name / "paired_differences.png").stat().st_size > 10_000
        assert (tmp_path / name / "accuracy_by_seed.png").stat().st_size > 10_000
    old = [row for row in read_results(tmp_path / "imagenet5-cpu" / "results.csv") if row.metric == "accuracy"]
    assert list(forest_points(paired_differences(old))) == [
        f"G-SimCLR − SimCLR, {r}" for r in ("P1", "P2", "P3", "fine-tune")
    ]


def test_a_table_that_is_not_a_report_is_one_line(tmp_path):
    (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["figures", str(tmp_path / "results.csv")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and len(result.output.splitlines()) == 1
    assert not (tmp_path / "paired_differences.png").exists()
