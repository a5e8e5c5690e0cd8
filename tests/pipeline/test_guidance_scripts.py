"""The CIFAR-10 guidance screen, study and single-arm scripts (pipelines/): every variant they name is a valid study,
and an unknown one is refused before anything runs."""

import re
import shutil
import subprocess

import pytest
import torch
from conftest import REPO, command_env

from gsimclr.outputs.metrics import read_results
from gsimclr.pipeline.paired_arm import recipe_differences
from gsimclr.pipeline.study import effective_params
from gsimclr.system.machine import cpu_kind
from gsimclr.training.device import resolve_precision

SCRIPTS = ("cifar10-guidance-screen.sh", "cifar10-guidance-study.sh", "cifar10-guidance-arm.sh")
TABLES = ("cifar10-guidance-screen.sh", "cifar10-guidance-arms.sh")
"""The files that hold a `[name]="key=value ..."` table of variants (the study and arm scripts source the second)."""


def variants(script: str) -> dict[str, list[str]]:
    """The script's `[name]="key=value ..."` table: each variant's guidance overrides."""
    text = (REPO / "pipelines" / script).read_text()
    return {name: values.split() for name, values in re.findall(r'^\s*\[([\w-]+)\]="([^"]*)"', text, re.MULTILINE)}


@pytest.mark.parametrize("script", TABLES)
def test_every_variant_is_a_valid_study_of_the_cifar10_recipe(script):
    table = variants(script)
    assert len(table) >= 3
    for name, overrides in table.items():
        params = effective_params(REPO / "pipelines" / "cifar10-cpu.yaml", [f"guidance.{item}" for item in overrides])
        oracle = params.guidance.labels == "oracle"
        assert oracle == name.startswith("oracle"), f"{name}: only oracle-* variants may read the true labels"


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unknown_variant_is_refused_before_anything_runs(tmp_path, script):
    result = subprocess.run(
        ["bash", str(REPO / "pipelines" / script), "/nonexistent/cifar10", str(tmp_path / "out"), "no-such-variant"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: unknown "), result.stderr
    assert not (tmp_path / "out").exists()


def test_the_single_arm_script_refuses_the_papers_own_arm(tmp_path):
    """The committed study already holds the paper's G-SimCLR: re-training it alone would pair it with itself."""
    result = run_arm(tmp_path / "arm", "paper")
    assert result.returncode == 2, result.stderr
    listed = result.stderr.removeprefix("error: unknown arm paper (one of: ").removesuffix(")\n")
    assert set(listed.split()) == set(variants("cifar10-guidance-arms.sh")) - {"paper"}, result.stderr
    assert not (tmp_path / "arm").exists()


def baselines() -> dict[str, tuple[str, ...]]:
    """The single-arm script's BASELINES table, evaluated by bash: CPU kind and the precision `auto` takes there ->
    the committed SimCLR arm's results.csv and params file."""
    text = (REPO / "pipelines" / "cifar10-guidance-arm.sh").read_text()
    start = text.index("guidance_study=")
    table = text[start : text.index("\n)\n", start) + 3]
    listing = 'for key in "${!BASELINES[@]}"; do echo "$key=${BASELINES[$key]}"; done'
    lines = subprocess.run(["bash", "-c", table + listing], capture_output=True, text=True, check=True).stdout
    return {key: tuple(value.split()) for key, value in (line.split("=") for line in lines.splitlines())}


def run_arm(folder, arm: str, *seeds: str) -> subprocess.CompletedProcess:
    """The single-arm script on a data folder that does not exist: it stops at its checks or at `gsimclr prepare`."""
    script = REPO / "pipelines" / "cifar10-guidance-arm.sh"
    return subprocess.run(
        ["bash", str(script), "/nonexistent/cifar10", str(folder), arm, *seeds],
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_each_committed_simclr_arm_the_single_arm_script_pairs_with_has_the_arms_recipe():
    """`gsimclr pair` refuses a recipe that differs, so a wrong baseline would fail only after hours of training."""
    table = baselines()
    assert set(table) == {"x86_64-avx2 fp32", "x86_64-avx512 bf16"}
    arm = effective_params(
        REPO / "pipelines" / "cifar10-cpu.yaml",
        [f"guidance.{item}" for item in variants("cifar10-guidance-arms.sh")["oracle-batches"]],
    )
    for machine, (results, params_file) in table.items():
        assert recipe_differences(arm, effective_params(REPO / params_file, [])) == [], machine
        assert {row.seed for row in read_results(REPO / results) if row.method == "simclr"} == {0, 1, 2}, machine


def test_the_single_arm_script_runs_only_where_a_committed_simclr_arm_of_the_kind_ran(tmp_path):
    """On a CPU kind (and `auto` precision) without a committed SimCLR arm the guided arm would be paired across
    kinds, so the script stops before writing anything; on one with it, it writes the arm's params -- the recipe of
    pipelines/cifar10-cpu.yaml but for the guidance and the seeds given -- and goes on to `gsimclr prepare`, which
    finds no images here."""
    folder = tmp_path / "arm"
    result = run_arm(folder, "oracle-batches", "2", "1")
    assert result.returncode == 2, result.stderr
    machine = f"{cpu_kind()} {resolve_precision('auto', torch.device('cpu'))}"
    if machine not in baselines():
        assert result.stderr.startswith(f"error: this CPU is {machine}; committed SimCLR arms ran on: "), result.stderr
        assert not folder.exists()
        return
    assert result.stderr.startswith("error: image folder not found: /nonexistent/cifar10/train"), result.stderr
    params = effective_params(folder / "params.yaml", [])
    recipe = effective_params(REPO / "pipelines" / "cifar10-cpu.yaml", ["data.root=/nonexistent/cifar10"])
    assert params.guidance.labels == "oracle" and params.guidance.batches == "guided"
    assert params.seeds == [2, 1]
    assert params.model_dump(exclude={"guidance", "seeds"}) == recipe.model_dump(exclude={"guidance", "seeds"})


@pytest.mark.parametrize(("seeds", "message"), [(("0", "x"), "seed x is not"), (("1", "1"), "seeds 1 1 name one")])
def test_the_single_arm_script_refuses_bad_seeds_before_anything_runs(tmp_path, seeds, message):
    result = run_arm(tmp_path / "arm", "oracle-batches", *seeds)
    assert result.returncode == 2 and result.stderr.startswith(f"error: {message}"), result.stderr
    assert not (tmp_path / "arm").exists()


def test_the_study_tables_its_arms_beside_the_committed_paper_arm(tmp_path):
    """With every arm's report already in OUT nothing trains: the script goes straight to `gsimclr tabulate`, which
    puts the committed 3-seed study's G-SimCLR (results/cifar10-cpu/) first and names the CPU kind of each arm."""
    out = tmp_path / "out"
    for arm in ("oracle-attract", "network-cancel-head", "oracle-batches"):
        (out / arm).mkdir(parents=True)
        shutil.copy(REPO / "results" / "cifar10-cpu" / "results.csv", out / arm / "results.csv")
    env = command_env()
    script = REPO / "pipelines" / "cifar10-guidance-study.sh"
    result = subprocess.run(
        ["bash", str(script), "/nonexistent/cifar10", str(out)], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    table = (out / "table.md").read_text()
    studies = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines() if " | P3 | " in line]
    kind = cpu_kind()
    assert studies[:4] == [
        "paper (committed study, x86_64-avx2 fp32)",
        f"oracle-attract ({kind})",
        f"network-cancel-head ({kind})",
        f"oracle-batches ({kind})",
    ], studies
    assert (out / "paired_differences.png").stat().st_size > 0
