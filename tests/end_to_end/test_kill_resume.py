"""SIGKILL a training stage mid-run, re-run the same command: the result is bit-identical to an uninterrupted run.

Also: with the same seed, evaluation metrics are identical across independent projects.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_PARAMS, write_params

pytestmark = pytest.mark.slow
GSIMCLR = str(Path(sys.executable).parent / "gsimclr")
PARAMS = dict(
    TINY_PARAMS,
    autoencoder={**TINY_PARAMS["autoencoder"], "epochs": 6, "patience": 6, "batch_size": 16},
    pretrain={**TINY_PARAMS["pretrain"], "epochs": 3},  # killed in the third, the last
    evaluate={
        **TINY_PARAMS["evaluate"],
        "finetune": {"epochs": 3, "patience": 3, "batch_size": 16},
        "finetune_fraction": 1.0,
    },
)
STAGES = {
    "autoencoder": (["autoencoder"], "autoencoder", "artifacts/seed0/autoencoder.pt", "metrics/seed0/autoencoder.json"),
    "pretrain": (
        ["pretrain", "--method", "simclr"],
        "pretrain_simclr",
        "artifacts/seed0/pretrain_simclr.pt",
        "metrics/seed0/pretrain_simclr.json",
    ),
    "pretrain-gsimclr": (
        ["pretrain", "--method", "gsimclr"],
        "pretrain_gsimclr",
        "artifacts/seed0/pretrain_gsimclr.pt",
        "metrics/seed0/pretrain_gsimclr.json",
    ),
    # the from-scratch control's fine-tune: evaluate's one resumable classifier that needs no upstream stage
    "evaluate": (
        ["evaluate", "--method", "random_init"],
        "evaluate_random_init_finetune",
        None,
        "metrics/seed0/evaluate_random_init.json",
    ),
}
UPSTREAM = {"pretrain-gsimclr": [["autoencoder"], ["cluster"]]}
EPOCHS = {
    "autoencoder": PARAMS["autoencoder"]["epochs"],
    "pretrain": PARAMS["pretrain"]["epochs"],
    "pretrain-gsimclr": PARAMS["pretrain"]["epochs"],
    "evaluate": PARAMS["evaluate"]["finetune"]["epochs"],
}


def project(root: Path) -> Path:
    root.mkdir()
    write_params(root / "params.yaml", PARAMS)
    return root


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Every run on one thread, so that the uninterrupted run and the killed one share two cores side by side (the
same thread count for both: resuming, not the thread count, is what the comparison is about)."""


def start(root: Path, *args: str) -> subprocess.Popen:
    with open(root / "stderr.log", "a") as stderr:
        return subprocess.Popen(
            [GSIMCLR, "--device", "cpu", *args], cwd=root, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=stderr
        )


def finish(process: subprocess.Popen, root: Path) -> None:
    assert process.wait(timeout=600) == 0, (root / "stderr.log").read_text()[-3000:]


def gsimclr(root: Path, *args: str) -> None:
    finish(start(root, *args), root)


def side_by_side(roots: list[Path], *args: str) -> None:
    """The same command in each project at once, one core each."""
    for root, process in [(root, start(root, *args)) for root in roots]:
        finish(process, root)


def epochs_logged(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def kill_mid_epoch(root: Path, args: list[str], checkpoint: str) -> int:
    """Start the stage, SIGKILL it while it trains the epoch after its first checkpoint; return the
    epochs it had saved."""
    log = root / "checkpoints" / "seed0" / f"{checkpoint}.log.jsonl"
    process = start(root, *args)
    deadline = time.time() + 300
    while epochs_logged(log) < 2 and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # into the third epoch
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the stage finished before it could be killed"
    return torch.load(root / "checkpoints" / "seed0" / f"{checkpoint}.pt", weights_only=True)["epoch"]


def same_weights(a: Path, b: Path) -> bool:
    first, second = torch.load(a, weights_only=True)["model"], torch.load(b, weights_only=True)["model"]
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path, stage):
    args, checkpoint, model, metrics = STAGES[stage]
    straight, killed = project(tmp_path / "straight"), project(tmp_path / "killed")
    for upstream in UPSTREAM.get(stage, []):
        side_by_side([straight, killed], *upstream)
    uninterrupted = start(straight, *args)

    saved = kill_mid_epoch(killed, args, checkpoint)
    assert 1 <= saved < EPOCHS[stage]
    assert not (killed / metrics).exists()
    gsimclr(killed, *args)
    finish(uninterrupted, straight)

    if model is not None:
        assert same_weights(straight / model, killed / model)
    assert json.loads((straight / metrics).read_text()) == json.loads((killed / metrics).read_text())
    assert not (killed / "checkpoints" / "seed0" / f"{checkpoint}.pt").exists()
    if stage == "pretrain":  # same seed, same pretrained weights -> identical evaluation
        side_by_side([straight, killed], "evaluate", "--method", "simclr")
        evaluation = "metrics/seed0/evaluate_simclr.json"
        assert json.loads((straight / evaluation).read_text()) == json.loads((killed / evaluation).read_text())


def test_resumed_run_continues_the_same_mlflow_run(tmp_path):
    root = project(tmp_path / "p")
    kill_mid_epoch(root, ["autoencoder"], "autoencoder")
    state = torch.load(root / "checkpoints" / "seed0" / "autoencoder.pt", weights_only=True)
    gsimclr(root, "autoencoder")
    record = json.loads((root / "runs" / "seed0" / "autoencoder.json").read_text())
    assert record["run_id"] == state["run_id"]
    env = {**os.environ}
    env.pop("MLFLOW_TRACKING_URI", None)
    code = (
        "import mlflow; mlflow.set_tracking_uri('sqlite:///" + str(root / "mlruns" / "mlflow.db") + "');"
        "print(len(mlflow.search_runs(search_all_experiments=True)))"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        == "1"
    )
