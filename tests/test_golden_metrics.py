"""Refactoring guard: a tiny digits study must write the metrics it wrote before (tests/golden/).

Every stage's metrics JSON of one seed, compared key by key. A change that alters a number (a different
RNG draw, a reordered reduction, a changed default) fails here; a deliberate change regenerates the file
with `python tests/test_golden_metrics.py` and says why in its commit.
"""

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from conftest import STUDY_COMMANDS, TINY_PARAMS, write_params
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from gsimclr.cli import app

pytestmark = pytest.mark.slow
GOLDEN = Path(__file__).parent / "golden" / "digits_tiny_metrics.json"
RELATIVE, ABSOLUTE = 1e-5, 1e-6
"""Accuracies are multiples of 1/n and must match; sums (k-means inertia, losses) may differ in the last
float32 digits with the number of threads that reduced them."""


def run_tiny_study(root: Path) -> dict[str, dict[str, float]]:
    """Every stage of one digits seed under TINY_PARAMS in `root`; {metrics file name: its metrics}."""
    params = write_params(root / "params.yaml", TINY_PARAMS)
    runner = CliRunner()
    threads = torch.get_num_threads()
    # One thread: a reduction split over another number of threads rounds differently, and training
    # amplifies a last-digit difference into a different model.
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            for command in STUDY_COMMANDS[:-1]:
                result = runner.invoke(app, ["--params", str(params), "--device", "cpu", *command])
                assert result.exit_code == 0, f"{command}: {result.output}"
    finally:
        torch.set_num_threads(threads)
    return {path.name: json.loads(path.read_text()) for path in sorted((root / "metrics" / "seed0").glob("*.json"))}


def test_a_tiny_digits_study_reproduces_the_golden_metrics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got, want = run_tiny_study(tmp_path), json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(want)
    for name, metrics in want.items():
        assert sorted(got[name]) == sorted(metrics), name
        differ = [
            f"{name} {key}: {got[name][key]} != {value}"
            for key, value in metrics.items()
            if not math.isclose(got[name][key], value, rel_tol=RELATIVE, abs_tol=ABSOLUTE)
        ]
        assert not differ, "\n".join(differ)


if __name__ == "__main__":  # regenerate: python tests/test_golden_metrics.py
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        here = os.getcwd()
        os.chdir(tmp)
        try:
            metrics = run_tiny_study(Path(tmp))
        finally:
            os.chdir(here)
    GOLDEN.write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
