"""`gsimclr pool`: one study's seeds reported in several parts, pooled into the tables `compare` writes."""

import csv
import json
from pathlib import Path

import pytest
from conftest import table_lines
from typer.testing import CliRunner

from gsimclr.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "results"
"""The digits study as `compare` wrote it over seeds 0, 1 and 2 (committed)."""


def split(results: Path, parts: dict[str, set[int]], folder: Path) -> list[Path]:
    """Write each part's rows of `results` (by seed) to folder/<part>/results.csv, as a part's compare would."""
    with results.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    paths = []
    for name, seeds in parts.items():
        path = folder / name / "results.csv"
        path.parent.mkdir(parents=True)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, list(rows[0]))
            writer.writeheader()
            writer.writerows(row for row in rows if int(row["seed"]) in seeds)
        paths.append(path)
    return paths


def pool(*args: object):
    return runner.invoke(app, ["-p", str(ROOT / "params.yaml"), "pool", *map(str, args)])


def test_pooled_parts_give_the_tables_and_metrics_compare_gave_over_all_seeds(tmp_path):
    parts = split(DIGITS / "results.csv", {"first": {0, 1}, "second": {2}}, tmp_path)
    result = pool(*parts, "--output", tmp_path / "pooled")
    assert result.exit_code == 0, result.output
    pooled = (tmp_path / "pooled" / "results.md").read_text()
    assert pooled.startswith("# SimCLR vs G-SimCLR on `digits` (3 seeds: 0, 1, 2)")
    assert table_lines(pooled) == table_lines((DIGITS / "results.md").read_text())
    assert json.loads((tmp_path / "pooled" / "metrics.json").read_text()) == json.loads(
        (DIGITS / "metrics.json").read_text()
    )
    assert "- [../first/results.md](../first/results.md): seeds 0, 1" in pooled
    assert "- [../second/results.md](../second/results.md): seed 2" in pooled
    for figure in ("accuracy_by_seed.png", "paired_differences.png"):  # the table's figures, linked from the report
        assert (tmp_path / "pooled" / figure).stat().st_size > 0 and f"]({figure})" in pooled
    with (tmp_path / "pooled" / "results.csv").open(newline="") as handle:
        assert sorted(int(row["seed"]) for row in csv.DictReader(handle)) == [0] * 14 + [1] * 14 + [2] * 14


def without(path: Path, method: str, representation: str, seed: int) -> Path:
    """`path` less one cell of one seed."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    kept = [r for r in rows if (r["method"], r["representation"], int(r["seed"])) != (method, representation, seed)]
    assert len(kept) == len(rows) - 1
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return path


@pytest.mark.parametrize(
    ("parts", "damage", "message"),
    [
        ({"a": {0, 1}, "b": {1, 2}}, None, "seed 1 is in both"),
        ({"a": {0, 1, 2}}, None, "name two results.csv files or more"),
        ({"a": {0, 1}, "b": {2}}, ("gsimclr", "P2", 2), "b/results.csv: no G-SimCLR P2 row for seed 2"),
    ],
)
def test_overlapping_single_or_incomplete_parts_are_one_line_errors(tmp_path, parts, damage, message):
    paths = split(DIGITS / "results.csv", parts, tmp_path)
    if damage:
        without(paths[-1], *damage)
    result = pool(*paths, "--output", tmp_path / "pooled")
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "pooled").exists()


def test_parts_citing_different_paper_figures_are_refused(tmp_path):
    first, second = split(DIGITS / "results.csv", {"a": {0}, "b": {1, 2}}, tmp_path)
    text = second.read_text().splitlines()
    header = text[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in text[1:]]
    rows[0]["paper"] = "0.5"
    second.write_text("\n".join([text[0], *(",".join(r[h] for h in header) for r in rows)]) + "\n")
    result = pool(first, second, "--output", tmp_path / "pooled")
    assert result.exit_code == 2
    assert "parts of different studies?" in result.output, result.output


def test_a_missing_part_is_a_one_line_error(tmp_path):
    (first,) = split(DIGITS / "results.csv", {"a": {0}}, tmp_path)
    result = pool(first, tmp_path / "nowhere" / "results.csv", "--output", tmp_path / "pooled")
    assert result.exit_code == 2
    assert "results table not found" in result.output, result.output


def test_params_of_another_study_are_refused(tmp_path):
    """The digits rows cite no paper figures; the CIFAR-10 study's params would label them with the paper's."""
    parts = split(DIGITS / "results.csv", {"a": {0}, "b": {1, 2}}, tmp_path)
    result = runner.invoke(
        app, ["-p", str(ROOT / "pipelines" / "cifar10-cpu.yaml"), "pool", *map(str, parts), "--output", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "data.paper_reference='cifar10'" in result.output, result.output


def test_the_output_folder_may_not_be_a_part(tmp_path):
    first, second = split(DIGITS / "results.csv", {"a": {0}, "b": {1, 2}}, tmp_path)
    before = second.read_bytes()
    result = pool(first, second, "--output", second.parent)
    assert result.exit_code == 2
    assert "holds the part" in result.output, result.output
    assert second.read_bytes() == before
