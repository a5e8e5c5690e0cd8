"""The default study run as `dvc repro` (one stage at a time, every core to it) and as `gsimclr repro --jobs N`
(N stages at a time, cores / N threads each), on the same machine, in one run.

Each run gets its own scratch copy of this checkout (`git worktree` at `--revision`) with an empty MLflow store
and no DVC cache, so both do the same work from nothing. `--epochs N` cuts every training stage to N epochs
(what the runner changes is how start-ups and stages overlap, which the cut keeps); `--epochs 0` keeps the
committed params.yaml, i.e. the quickstart itself. Not a test: it never fails on speed.

    python -m benchmarks.repro [--epochs 2] [--jobs 2] [--revision HEAD]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from benchmarks.machine import describe

EPOCHS = [("autoencoder",), ("pretrain",), ("evaluate", "finetune"), ("evaluate", "supervised")]


def cut_epochs(params: dict, epochs: int) -> dict:
    """`params` with every training stage cut to `epochs` epochs (0: unchanged)."""
    if epochs:
        for path in EPOCHS:
            section = params
            for key in path:
                section = section[key]
            section["epochs"] = epochs
            if "patience" in section:
                section["patience"] = min(section["patience"], epochs)
    return params


def timed_run(repo: Path, revision: str, into: Path, epochs: int, command: list[str]) -> float:
    """Seconds `command` takes to reproduce the study in a fresh worktree of `revision` at `into`."""
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(into), revision], check=True)
    params = into / "params.yaml"
    params.write_text(yaml.safe_dump(cut_epochs(yaml.safe_load(params.read_text()), epochs), sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env |= {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(into)}  # its own code
    env.pop("MLFLOW_TRACKING_URI", None)
    start = time.monotonic()
    done = subprocess.run(command, cwd=into, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {into}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs of every training stage (0: params.yaml's)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--revision", default="HEAD")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[1]
    print(describe(torch.device("cpu")))
    scope = f"every training stage {args.epochs} epochs" if args.epochs else "the committed params.yaml"
    print(f"the default study (digits, {scope}) at {args.revision}, from an empty cache and MLflow store\n")
    runs = {
        "dvc repro": [sys.executable, "-m", "dvc", "repro"],
        f"gsimclr repro --jobs {args.jobs}": [sys.executable, "-m", "gsimclr", "repro", "--jobs", str(args.jobs)],
    }
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for index, (name, command) in enumerate(runs.items()):
                seconds[name] = timed_run(repo, args.revision, Path(tmp) / str(index), args.epochs, command)
                print(f"{name:28} {seconds[name]:8.1f} s")
        finally:
            for index in range(len(runs)):
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(Path(tmp) / str(index))])
    serial, parallel = seconds.values()
    print(f"{'ratio parallel / serial':28} {parallel / serial:8.2f}")


if __name__ == "__main__":
    main()
