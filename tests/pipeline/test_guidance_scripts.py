"""The CIFAR-10 guidance screen and study scripts (pipelines/): every variant they name is a valid study, and an
unknown one is refused before anything runs."""

import re
import subprocess

import pytest
from conftest import REPO

from gsimclr.pipeline.study import effective_params

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
