"""Shared fixtures: small real-format datasets written on the fly, and tiny parameter files."""

import os
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import yaml

if TYPE_CHECKING:
    from matplotlib.figure import Figure

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_IMAGENET = REPO.parent / "shared" / "data" / "imagenet-5-categories"

TINY_PARAMS = {
    "seeds": [0],
    "data": {"name": "digits", "image_size": 8, "val_fraction": 0.2, "test_fraction": 0.2, "paper_reference": None},
    "autoencoder": {"filters": [8, 16], "epochs": 2, "patience": 2, "batch_size": 128},
    "cluster": {"k": 16, "n_init": 1, "tsne_points": 100},
    "model": {"backbone": "cifar_resnet", "blocks_per_stage": 1, "head_dims": [32, 16, 8]},
    "pretrain": {
        "epochs": 2,
        "batch_size": 16,
        "lr": 0.01,
        "augment": {"crop_scale": [0.5, 1.0], "flip": False, "grayscale_p": 0.0},
    },
    "guidance": {"batches": "guided", "false_negatives": "keep"},
    "evaluate": {
        "linear": {"c_grid": [0.1, 1.0]},
        "finetune": {"epochs": 1, "patience": 1, "batch_size": 64},
        "supervised": {"epochs": 1, "patience": 1, "batch_size": 128},
    },
}

STUDY_COMMANDS = [
    ["prepare"],
    ["autoencoder"],
    ["cluster"],
    ["pretrain", "--method", "simclr"],
    ["pretrain", "--method", "gsimclr"],
    *[["evaluate", "--method", m] for m in ("simclr", "gsimclr", "supervised", "random_init", "pixels")],
    ["compare"],
]
"""Every stage of one seed's study, in order (what `dvc repro` runs for a single seed)."""


@pytest.fixture(autouse=True)
def isolated_tracking_uri(monkeypatch):
    """`mlflow.set_tracking_uri` exports MLFLOW_TRACKING_URI: without this, an in-process CLI test would
    point the subprocesses of later tests at its own (temporary) store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def command_env() -> dict[str, str]:
    """The environment of a test that runs the project's commands (`gsimclr`, `dvc`, `torchrun`, `git`) as
    subprocesses: this interpreter's bin folder first on PATH, so the commands are the ones installed beside it; no
    MLflow store inherited from an earlier test; and a git identity, so a test repository commits on a CI machine that
    has none."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env |= {f"GIT_{who}_{what}": "t" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture
def tiny_params(tmp_path) -> Path:
    return write_params(tmp_path / "params.yaml", TINY_PARAMS)


def write_cifar_fixture(root: Path, per_batch: int = 20, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """A small CIFAR-10 in the exact python-batch format: pickled dicts with b'data' (N, 3072) and b'labels'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    first = None
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        with (folder / name).open("wb") as handle:
            pickle.dump(
                {
                    b"batch_label": name.encode(),
                    b"labels": labels,
                    b"data": data,
                    b"filenames": [f"{i}.png".encode() for i in range(per_batch)],
                },
                handle,
                protocol=2,
            )
        first = first or (data, labels)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": per_batch, b"num_vis": 3072}, handle, protocol=2)
    return first


def write_image_folder(root: Path, classes=("cat", "dog"), per_class: int = 4, size=(20, 14)) -> Path:
    """A tiny ImageFolder tree of real (PNG/JPEG) files with distinguishable colours per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 60, size=(size[1], size[0], 3), dtype=np.uint8)
                pixels[..., c % 3] += 180
                ext = "png" if i % 2 else "jpg"
                Image.fromarray(pixels).save(folder / f"{i}.{ext}")
    return root


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie waiting to be reaped (Linux)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll `condition` until it holds or `seconds` pass; returns whether it holds."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def forest_points(figure: "Figure") -> dict[str, float]:
    """Row label -> the point drawn on it (the paired mean difference)."""
    axis = figure.axes[0]
    labels = {
        round(tick): label.get_text() for tick, label in zip(axis.get_yticks(), axis.get_yticklabels(), strict=True)
    }
    points = {}
    for line in axis.lines:
        x, y = line.get_xdata(), line.get_ydata()
        if line.get_marker() == "o" and round(y[0]) in labels:  # the point, not the interval's caps
            points[labels[round(y[0])]] = float(x[0])
    return points


def table_lines(markdown: str) -> list[str]:
    """The report's table rows, without the provenance table (it names runs, which only compare has)."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    provenance = "| stage | seed | MLflow run | wall time (s) | device |"
    return lines[: lines.index(provenance)] if provenance in lines else lines
