"""`gsimclr tabulate`: studies side by side, each guided arm paired with its own SimCLR arm by seed."""

import csv

import pytest
from conftest import forest_points
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.reporting.tabulate import differences_figure, read_studies
from gsimclr.settings.names import ORACLE_LABEL

runner = CliRunner()
FIELDS = ["table", "metric", "method", "representation", "seed", "test_acc", "paper", "guided_by"]


def write_results(path, values: dict, metric: str = "accuracy", guided_by: str = "autoencoder"):
    """values: (method, representation) -> accuracies (%) for seeds 0, 1, 2."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for (method, rep), accs in values.items():
            for seed, acc in enumerate(accs):
                writer.writerow(
                    {
                        "table": "II",
                        "metric": metric,
                        "method": method,
                        "representation": rep,
                        "seed": seed,
                        "test_acc": acc / 100,  # results.csv holds fractions
                        "paper": "",
                        "guided_by": guided_by if method == "gsimclr" else "",
                    }
                )
    return path


def test_rows_pair_each_study_with_its_own_simclr_arm(tmp_path):
    base = write_results(tmp_path / "a.csv", {("simclr", "P3"): [50, 52, 54], ("gsimclr", "P3"): [51, 53, 55]})
    other = write_results(tmp_path / "b.csv", {("simclr", "P3"): [50, 60, 40], ("gsimclr", "P3"): [52, 58, 43]})
    result = runner.invoke(
        app, ["tabulate", f"guided={base}", f"noisy={other}", "-r", "P3", "--output", str(tmp_path / "t.md")]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 4
    # +1 on every seed: zero spread, so the interval is 0 and the gain is called
    assert lines[2] == "| guided | P3 | 3 | 52.00 ± 4.97 | 53.00 ± 4.97 | +1.00 ± 0.00 | guided arm better |"
    # differences +2, -2, +3: mean +1, t(0.975, 2) · sd / sqrt(3) = 4.303 · 2.646 / 1.732 = 6.57
    assert (
        lines[3]
        == "| noisy | P3 | 3 | 50.00 ± 24.84 | 51.00 ± 18.75 | +1.00 ± 6.57 | not distinguishable from seed noise |"
    )
    assert (tmp_path / "t.md").read_text() == result.output


def test_bad_studies_are_one_line_errors(tmp_path):
    cases = [
        (["tabulate", "no-equals-sign"], "expected LABEL=path"),
        (["tabulate", f"x={tmp_path / 'missing.csv'}"], "results table not found"),
        (
            ["tabulate", f"x={write_results(tmp_path / 'a.csv', {('simclr', 'P3'): [1, 2, 3]})}", "-r", "P3"],
            "no P3 results for both",
        ),
        (["tabulate", f"x={tmp_path / 'a.csv'}", "--metric", "balanced_accuracy"], "long-tailed runs only"),
    ]
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    cases.append((["tabulate", f"x={tmp_path / 'other.csv'}"], "not a gsimclr results.csv"))
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1


def test_the_oracle_bound_is_named_and_never_called_better(tmp_path):
    cells = {("simclr", "P3"): [50, 52, 54], ("gsimclr", "P3"): [60, 62, 64], ("random_init", "P3"): [40, 41, 42]}
    bound = write_results(tmp_path / "o.csv", cells, guided_by="oracle")
    result = runner.invoke(app, ["tabulate", f"cancel={bound}", "-r", "P3"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    row = lines[2]
    assert row.startswith("| cancel — oracle (uses true labels: an upper bound, not a method) | P3 |")
    assert row.endswith("| +10.00 ± 0.00 | upper bound: room above SimCLR |") and "better" not in row
    assert lines[-1].startswith("| cancel — oracle (uses true labels: an upper bound, not a method) | P3 | 41.00")


def test_the_controls_follow_with_each_arm_paired_against_the_untrained_network(tmp_path):
    study = write_results(
        tmp_path / "a.csv",
        {
            ("simclr", "P3"): [60, 62, 64],
            ("gsimclr", "P3"): [61, 62, 66],
            ("random_init", "P3"): [40, 41, 42],
            ("pixels", "pixels"): [30, 30, 30],
        },
    )
    result = runner.invoke(app, ["tabulate", f"paper={study}", "-r", "P3"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[4].startswith("Controls under the same probe")
    # margins over the untrained network: simclr +20, +21, +22 (mean 21, sd 1: 4.303 / 1.732 = 2.48); gsimclr
    # +21, +21, +24 (mean 22, sd 1.732: 4.303 · 1.732 / 1.732 = 4.30); pixels constant: no spread
    assert lines[-1] == "| paper | P3 | 41.00 ± 2.48 | 30.00 ± 0.00 | +21.00 ± 2.48 | +22.00 ± 4.30 |"


def test_the_figure_draws_each_paired_difference_and_names_the_oracle_bound(tmp_path):
    paper = write_results(tmp_path / "p.csv", {("simclr", "P3"): [50, 52, 54], ("gsimclr", "P3"): [49, 53, 54]})
    bound = write_results(
        tmp_path / "o.csv", {("simclr", "P3"): [50, 52, 54], ("gsimclr", "P3"): [60, 62, 65]}, guided_by="oracle"
    )
    studies = read_studies([f"paper={paper}", f"batches={bound}"])
    drawing = differences_figure(studies, ["P3"], data="CIFAR-10 (JPEG q75 copy)")
    points = forest_points(drawing)
    assert drawing.axes[0].get_title().startswith("CIFAR-10 (JPEG q75 copy): guided arm − SimCLR")
    assert points == {"paper, P3": pytest.approx(0.0), f"batches, P3\n{ORACLE_LABEL}": pytest.approx(31 / 3)}

    figure = tmp_path / "out" / "differences.png"
    result = runner.invoke(app, ["tabulate", f"paper={paper}", f"batches={bound}", "-r", "P3", "--figure", str(figure)])
    assert result.exit_code == 0, result.output
    assert figure.stat().st_size > 10_000


def test_a_figure_that_is_not_a_png_is_refused_before_anything_is_written(tmp_path):
    study = write_results(tmp_path / "a.csv", {("simclr", "P3"): [50, 52, 54], ("gsimclr", "P3"): [49, 53, 54]})
    outputs = ["--output", str(tmp_path / "t.md"), "--figure", str(tmp_path / "f.pdf")]
    result = runner.invoke(app, ["tabulate", f"x={study}", "-r", "P3", *outputs])
    assert result.exit_code == 2 and result.output.startswith("error: ") and ".png" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "t.md").exists() and not (tmp_path / "f.pdf").exists()
