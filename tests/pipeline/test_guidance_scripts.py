"""The CIFAR-10 guidance screen and study scripts (pipelines/): every variant they name is a valid study, and an
unknown one is refused before anything runs."""

import re
import shutil
import subprocess

import pytest
from conftest import REPO, command_env

from gsimclr.pipeline.study import effective_params
from gsimclr.system.machine import cpu_kind

SCRIPTS = ("cifar10-guidance-screen.sh", "cifar10-guidance-study.sh")


def variants(script: str) -> dict[str, list[str]]:
    """The script's `[name]="key=value ..."` table: each variant's guidance overrides."""
    text = (REPO / "pipelines" / script).read_text()
    return {name: values.split() for name, values in re.findall(r'^\s*\[([\w-]+)\]="([^"]*)"', text, re.MULTILINE)}


@pytest.mark.parametrize("script", SCRIPTS)
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
