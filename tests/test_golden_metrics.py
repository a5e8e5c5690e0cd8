"""Refactoring guard: a tiny digits study must write the metrics it wrote before (tests/golden/).

Every stage's metrics JSON of one seed, compared key by key. A change that alters a number (a different
RNG draw, a reordered reduction, a changed default) fails here; a deliberate change regenerates the file
with `python tests/test_golden_metrics.py` and says why in its commit.
"""

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
from conftest import STUDY_COMMANDS, TINY_PARAMS, write_params
from mlflow.tracking import MlflowClient
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


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory) -> tuple[Path, dict[str, dict[str, float]]]:
    root = tmp_path_factory.mktemp("golden")
    here, uri = os.getcwd(), os.environ.pop("MLFLOW_TRACKING_URI", None)  # an earlier test's store: not ours
    os.chdir(root)
    try:
        return root, run_tiny_study(root)
    finally:
        os.chdir(here)
        os.environ.pop("MLFLOW_TRACKING_URI", None)  # set by mlflow.set_tracking_uri in-process
        if uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = uri


def test_a_tiny_digits_study_reproduces_the_golden_metrics(tiny_study):
    _, got = tiny_study
    want = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(want)
    for name, metrics in want.items():
        assert sorted(got[name]) == sorted(metrics), name
        differ = [
            f"{name} {key}: {got[name][key]} != {value}"
            for key, value in metrics.items()
            if not math.isclose(got[name][key], value, rel_tol=RELATIVE, abs_tol=ABSOLUTE)
        ]
        assert not differ, "\n".join(differ)


RUN_OF_METRICS = {"autoencoder.json": "train.json"}
"""The run record of the stage that wrote a metrics file (same name where not listed)."""


def test_every_dvc_metric_is_the_final_value_of_the_same_mlflow_key(tiny_study):
    """One naming scheme: the DVC metrics file and the stage's MLflow run hold the same keys and values."""
    root, got = tiny_study
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    for name, metrics in got.items():
        record = json.loads((root / "runs" / "seed0" / RUN_OF_METRICS.get(name, name)).read_text())
        logged = client.get_run(record["run_id"]).data.metrics
        missing = sorted(set(metrics) - set(logged))
        assert not missing, f"{name}: not in MLflow: {missing[:5]}"
        assert all(math.isclose(logged[key], value, rel_tol=1e-6) for key, value in metrics.items()), name
        assert all(0.0 <= value <= 1.0 for key, value in metrics.items() if "acc" in key), f"{name}: not a fraction"


if __name__ == "__main__":  # regenerate: python tests/test_golden_metrics.py
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
