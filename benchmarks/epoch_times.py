"""Minutes per epoch of a study's training runs, read from the timestamps of their per-epoch MLflow metrics.

A stage's run record (`runs/seed<N>/<stage>.json`, the report's Provenance) times only the process that
finished it. A long study is stopped and resumed from checkpoints, so a run's total wall time mixes compute
with the hours it sat stopped; the epochs themselves do not. Each epoch's time is the interval between its
epoch metric and the previous one; an interval over `--gap` times the run's median holds a stop (or a
resume's start-up) and is left out, and the run's minutes are then projected as median × epochs (the epochs
logged so far, for a run still going). Reads the store only: never starts, changes or deletes a run. Not a
test: it never fails on speed.

    python -m benchmarks.epoch_times [--store mlruns/mlflow.db] [--gap 2.5] [--runs pretrain]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from benchmarks.machine import describe
from gsimclr.outputs.metrics import epoch_curves

EPOCH_LOSS = next(iter(epoch_curves({"loss": 0.0})))
"""The per-epoch loss curve every training loop logs, named where the stages name it (`epoch/loss`; a
stage with several loops prefixes it: `finetune/epoch/loss`)."""


@dataclass(frozen=True)
class EpochTimes:
    """One run's epoch intervals (minutes), split into the uninterrupted ones and those holding a stop."""

    epochs: int
    kept: list[float]
    left_out: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.kept)

    @property
    def projected(self) -> float:
        """Minutes for all `epochs` at the median epoch: the run's length had it never been stopped."""
        return self.median * self.epochs


def epoch_times(timestamps_ms: list[int], gap: float) -> EpochTimes:
    """Intervals between consecutive epoch timestamps; those over `gap` × their median are left out.

    >>> t = epoch_times([0, 60_000, 120_000, 3_720_000, 3_780_000], gap=2.5)
    >>> t.kept, t.left_out, t.projected
    ([1.0, 1.0, 1.0], [60.0], 5.0)
    """
    if len(timestamps_ms) < 2:
        raise ValueError("need at least two epochs to time one")
    stamps = sorted(timestamps_ms)
    minutes = [(b - a) / 60_000 for a, b in itertools.pairwise(stamps)]
    limit = gap * statistics.median(minutes)
    kept = [m for m in minutes if m <= limit]
    return EpochTimes(len(stamps), kept, [m for m in minutes if m > limit])


def loss_key(keys: list[str]) -> str | None:
    """The run's per-epoch loss key (`.../epoch/loss`), or None for a run without an epoch loop."""
    epoch_keys = sorted(k for k in keys if k.endswith(EPOCH_LOSS))
    return epoch_keys[0] if epoch_keys else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=Path("mlruns/mlflow.db"), help="the study's MLflow sqlite file")
    parser.add_argument("--gap", type=float, default=2.5, help="an interval over GAP × median holds a stop")
    parser.add_argument("--runs", default="", help="only runs whose name contains this")
    args = parser.parse_args()
    if not args.store.is_file():
        parser.error(f"no MLflow store at {args.store}")
    client = MlflowClient(tracking_uri=f"sqlite:///{args.store.resolve()}")
    print(f"reading {args.store} on {describe(torch.device('cpu'))}")
    print("the runs' own CPU is in their run records (runs/seed<N>/*.json, 'hardware')")
    print(
        f"{'run':34} {'status':9} {'epochs':>6} {'median':>7} {'min':>6} {'max':>6} {'left out (min)':>22} "
        f"{'median × epochs':>16}"
    )
    experiments = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiments, order_by=["start_time"]):
        name = run.info.run_name or run.info.run_id
        key = loss_key(list(run.data.metrics))
        if args.runs not in name or key is None:
            continue
        history = client.get_metric_history(run.info.run_id, key)
        if len(history) < 2:
            continue
        t = epoch_times([m.timestamp for m in history], args.gap)
        left = ", ".join(f"{m:.0f}" for m in t.left_out) or "none"
        print(
            f"{name:34} {run.info.status:9} {t.epochs:6d} {t.median:6.1f}m {min(t.kept):5.1f}m {max(t.kept):5.1f}m "
            f"{left:>22} {t.projected:15.0f}m"
        )


if __name__ == "__main__":
    main()
