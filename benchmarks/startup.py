"""Start-up of every stage of the default study, at two revisions of this project, in one run.

Each revision is checked out into a scratch folder (`git worktree`), its own params.yaml with every epoch
count set to 1, and its stages run in order (prepare, train, cluster, both pretrainings, each evaluation,
compare) exactly as `dvc repro` runs them: one `gsimclr` process each, on the same machine, same store
type. For each stage it prints the time from starting the process to its first training step (where the
stage trains) and to its end, before and after, and their ratio. Not a test: it never fails on speed.

    python -m benchmarks.startup [--before d4b98ea] [--after HEAD]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch
import yaml

from benchmarks.machine import describe
from benchmarks.repro import cut_epochs

STAGES = [
    ["prepare"],
    ["train"],
    ["cluster"],
    ["pretrain", "--method", "simclr"],
    ["pretrain", "--method", "gsimclr"],
    ["evaluate", "--method", "simclr"],
    ["evaluate", "--method", "gsimclr"],
    ["evaluate", "--method", "random_init"],
    ["evaluate", "--method", "pixels"],
    ["evaluate", "--method", "supervised"],
    ["compare"],
]
WRAPPER = """
import os, sys, time
import gsimclr.training.engine as engine
train_epoch = engine.train_epoch
def first_step(*args, **kwargs):
    marker = os.environ["GSIMCLR_FIRST_STEP"]
    if not os.path.exists(marker):
        with open(marker, "w") as handle:
            handle.write(repr(time.time()))
    return train_epoch(*args, **kwargs)
engine.train_epoch = first_step
from gsimclr.cli import app
sys.argv[0] = "gsimclr"
app()
"""
"""Runs the CLI of the checked-out revision, noting the wall-clock time its first training step starts."""


def one_epoch(params: dict) -> dict:
    """The revision's own params with every training stage cut to one epoch and the first seed only."""
    params = cut_epochs(params, 1)
    params["seeds"] = params["seeds"][:1]
    return params


def run_stage(tree: Path, stage: list[str]) -> tuple[Optional[float], float]:
    """Seconds from starting the stage's process to its first training step (None: it does not train) and to its end."""
    marker = tree / ".first_step"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "GSIMCLR_FIRST_STEP": str(marker), "MLFLOW_DISABLE_TELEMETRY": "true"}
    start = time.time()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *stage], cwd=tree, env=env, capture_output=True, text=True)
    end = time.time()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(stage)} failed at {tree}:\n{done.stderr[-2000:]}")
    first = float(marker.read_text()) - start if marker.exists() else None
    return first, end - start


def checkout(repo: Path, revision: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(repo), "worktree", "add", "--detach", str(into), revision], check=True, capture_output=True
    )
    params = into / "params.yaml"
    params.write_text(yaml.safe_dump(one_epoch(yaml.safe_load(params.read_text())), sort_keys=False))
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="d4b98ea", help="revision before the start-up cuts")
    parser.add_argument("--after", default="HEAD")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[1]
    print(describe(torch.device("cpu")))
    print(f"stages of the default study (digits), every epoch count 1, one seed: {args.before} vs {args.after}\n")
    times: dict[str, list[tuple[Optional[float], float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {
            name: checkout(repo, rev, Path(tmp) / name)
            for name, rev in (("before", args.before), ("after", args.after))
        }
        try:
            for name, tree in trees.items():
                times[name] = [run_stage(tree, stage) for stage in STAGES]
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=False)

    def fmt(value: Optional[float]) -> str:
        return "     -" if value is None else f"{value:6.2f}"

    header = f"{'first step before/after (s)':>28} {'ratio':>6} {'whole stage before/after (s)':>30} {'ratio':>6}"
    print(f"{'stage':32} {header}")
    for stage, before, after in zip(STAGES, times["before"], times["after"], strict=True):
        first_ratio = f"{after[0] / before[0]:6.2f}" if before[0] and after[0] else "     -"
        print(
            f"{' '.join(stage):32} {fmt(before[0]):>13} {fmt(after[0]):>14} {first_ratio} "
            f"{before[1]:15.2f} {after[1]:14.2f} {after[1] / before[1]:6.2f}"
        )
    total_before, total_after = (sum(t[1] for t in times[name]) for name in ("before", "after"))
    print(
        f"{'all stages':32} {'':28} {'':6} {total_before:15.2f} {total_after:14.2f} {total_after / total_before:6.2f}"
    )


if __name__ == "__main__":
    main()
