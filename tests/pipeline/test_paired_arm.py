"""`gsimclr pair`: a guided arm trained on its own, reported beside an earlier study's SimCLR arm and controls."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import table_lines
from typer.testing import CliRunner

from gsimclr.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "results"
"""The digits study as `compare` wrote it over seeds 0, 1 and 2 (committed), with its stages' metrics in metrics/."""


def arm_folder(folder: Path, seeds=(0, 1, 2), **changes: dict) -> Path:
    """A folder in which only the guided arm ran: the committed digits study's G-SimCLR metrics of `seeds`, two run
    records per seed, and params.yaml with each section of `changes` updated."""
    for seed in seeds:
        (folder / "metrics" / f"seed{seed}").mkdir(parents=True)
        (folder / "runs" / f"seed{seed}").mkdir(parents=True)
        for stage in ("pretrain", "evaluate"):
            shutil.copy(ROOT / "metrics" / f"seed{seed}" / f"{stage}_gsimclr.json", folder / "metrics" / f"seed{seed}")
            record = {"run_id": f"{stage}{seed}", "wall_s": 1.5, "device": "cpu", "hardware": "a test CPU [kind]"}
            (folder / "runs" / f"seed{seed}" / f"{stage}_gsimclr.json").write_text(json.dumps(record))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in changes.items():
        params[section] |= values
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return folder


def pair(folder: Path, monkeypatch, *args: object, baseline: Path = DIGITS / "results.csv"):
    monkeypatch.chdir(folder)
    options = ["--baseline-params", str(ROOT / "params.yaml"), "--output", str(folder / "paired"), *map(str, args)]
    return runner.invoke(app, ["-p", "params.yaml", "pair", str(baseline), *options])


def test_the_arm_paired_with_its_own_studys_simclr_gives_what_compare_gave(tmp_path, monkeypatch):
    """The digits study's guided metrics beside its own results.csv: the same tables and metrics as its compare --
    the arm's rows come from its metrics files, every other row from the reused table."""
    result = pair(arm_folder(tmp_path), monkeypatch)
    assert result.exit_code == 0, result.output
    paired = (tmp_path / "paired" / "results.md").read_text()
    assert paired.startswith("# SimCLR vs G-SimCLR on `digits` (3 seeds: 0, 1, 2)")
    provenance = "| stage | seed | MLflow run | wall time (s) | device | hardware |"
    lines = table_lines(paired)
    assert lines[: lines.index(provenance)] == table_lines((DIGITS / "results.md").read_text())
    assert (tmp_path / "paired" / "results.csv").read_text() == (DIGITS / "results.csv").read_text()
    assert json.loads((tmp_path / "paired" / "metrics.json").read_text()) == json.loads(
        (DIGITS / "metrics.json").read_text()
    )
    assert "| pretrain gsimclr | 2 | `pretrain2` | 1.5 | cpu | a test CPU [kind] |" in paired
    assert f"the rows of `{DIGITS / 'results.csv'}` for the same seeds, not trained again" in paired
    for figure in ("accuracy_by_seed.png", "paired_differences.png"):
        assert (tmp_path / "paired" / figure).stat().st_size > 0 and f"]({figure})" in paired


def test_an_oracle_arm_is_named_as_the_bound_in_its_rows_and_report(tmp_path, monkeypatch):
    result = pair(arm_folder(tmp_path, guidance={"labels": "oracle"}), monkeypatch)
    assert result.exit_code == 0, result.output
    paired = (tmp_path / "paired" / "results.md").read_text()
    assert paired.startswith("# SimCLR vs oracle (uses true labels: an upper bound, not a method) on `digits`")
    with (tmp_path / "paired" / "results.csv").open(newline="") as handle:
        guided = {row["guided_by"] for row in csv.DictReader(handle) if row["method"] == "gsimclr"}
    assert guided == {"oracle"}


def test_the_data_root_may_differ_between_machines(tmp_path, monkeypatch):
    result = pair(arm_folder(tmp_path, data={"root": "/elsewhere/digits"}), monkeypatch)
    assert result.exit_code == 0, result.output


def reused_table(folder: Path, keep) -> Path:
    """The digits study's results.csv less the rows `keep` refuses."""
    with (DIGITS / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    path = folder / "baseline" / "results.csv"
    path.parent.mkdir()
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(row for row in rows if keep(row))
    return path


@pytest.mark.parametrize(
    ("changes", "seeds", "keep", "code", "message"),
    [
        ({"pretrain": {"epochs": 3}}, (0, 1, 2), None, 2, "recipe is not the baseline study's: pretrain.epochs differ"),
        ({"evaluate": {"finetune_fraction": 0.2}}, (0, 1, 2), None, 2, "evaluate.finetune_fraction differ"),
        ({}, (0, 1), None, 3, "evaluation of gsimclr (seed 2)"),  # 3: an upstream stage's output is missing
        ({}, (0, 1, 2), lambda row: row["method"] == "gsimclr", 2, "has no accuracy rows of SimCLR or the controls"),
        ({}, (0, 1, 2), lambda row: (row["method"], row["seed"]) != ("simclr", "1"), 2, "no SimCLR P1 row for seed 1"),
    ],
)
def test_another_recipe_a_missing_seed_or_cell_is_a_one_line_error_and_writes_nothing(
    tmp_path, monkeypatch, changes, seeds, keep, code, message
):
    baseline = reused_table(tmp_path, keep) if keep else DIGITS / "results.csv"
    result = pair(arm_folder(tmp_path, seeds, **changes), monkeypatch, baseline=baseline)
    assert result.exit_code == code
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "paired").exists()
