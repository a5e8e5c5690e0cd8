"""The one training loop behind every stage: autoencoder, SimCLR/G-SimCLR, probes, fine-tuning, supervised.

It owns what each of them would otherwise rewrite: per-epoch seeding (so a resumed run draws the same
batches and augmentations as an uninterrupted one), the progress bar, NaN/Inf detection with one host
sync per logging interval instead of per step, early stopping and best-epoch restore on a validation
metric (`checkpoint.Selection`), atomic per-epoch checkpoints with automatic resume (`gsimclr.training.checkpoint`),
and a JSON line per epoch in a log file. `fit` reads top to bottom: resume, then per epoch: train,
check, measure, select, checkpoint, log, stop.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, Optional, Protocol, TypeVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gsimclr.system.errors import TrainingDivergedError
from gsimclr.training import checkpoint
from gsimclr.training.checkpoint import ResumeState, Selection
from gsimclr.training.heartbeat import Heartbeat

Batch = TypeVar("Batch")
Metrics = dict[str, float]
SEED_STRIDE = 1_000_003
"""A prime that spaces derived seeds (per epoch, per rank) far apart in the seed space."""


class Stateful(Protocol):
    """Anything with a state dict that a checkpoint can hold and restore."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed for one epoch's torch RNG stream, derived only from (seed, epoch)."""
    return (seed * SEED_STRIDE + epoch * 7_919) % (2**63 - 1)


@dataclass
class LoopConfig:
    """How long to train, what to select on, and where to checkpoint and log."""

    desc: str
    epochs: int
    seed: int
    checkpoint: Optional[Path] = None
    log_file: Optional[Path] = None
    """One JSON line per epoch (written by the writer only)."""
    checkpoint_every: int = 1
    """Epochs between resume checkpoints (the last epoch and an early stop are always saved)."""
    writer: bool = True
    """False on data-parallel ranks other than 0: they resume from the checkpoint but never write it."""
    restart: bool = False
    """Delete a resume checkpoint instead of continuing from it."""
    config_hash: str = ""
    monitor: Optional[str] = None
    mode: Literal["min", "max"] = "min"
    patience: Optional[int] = None
    log_every: int = 20
    heartbeat_s: float = 60.0
    """Without a terminal (a log file): a progress line inside an epoch at most this many seconds apart."""


@dataclass
class FitResult:
    """The epoch history, the selected epoch and its metrics, and whether training stopped early."""

    history: list[Metrics]
    best_epoch: int
    best: Metrics = field(default_factory=dict)
    stopped_early: bool = False


@dataclass
class Training(Generic[Batch]):
    """What one training run is made of; `fit` drives it."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    batches: Callable[[int], Sequence[Batch]]
    """Epoch number -> that epoch's batches (re-drawn every epoch)."""
    step: Callable[[Batch], dict[str, torch.Tensor]]
    """Forward pass of one batch; returns tensors, `loss` among them, without calling `.item()`."""
    scheduler: Optional[Any] = None
    """Stepped once per batch (e.g. cosine decay over all steps)."""
    validate: Optional[Callable[[int], Metrics]] = None
    """Epoch number -> held-out metrics (`LoopConfig.monitor` selects on one of them); may be empty on some epochs."""
    batch_metrics: Optional[Callable[[Sequence[Batch]], Metrics]] = None
    on_epoch: Optional[Callable[[int, Metrics], None]] = None
    run_id: Optional[str] = None
    """Stored in checkpoints so a resumed stage continues the same tracking run."""
    state: Optional[Stateful] = None
    """Anything besides model/optimizer/scheduler that an epoch changes (e.g. refreshed pseudo labels):
    checkpointed with them, so a resumed run continues from the same state."""


def resumable_run_id(loop: LoopConfig) -> Optional[str]:
    """The tracking run id saved in a resumable checkpoint for this config, if any (never deletes)."""
    state = checkpoint.load(loop.checkpoint, loop.config_hash, loop.desc, quiet=True) if not loop.restart else None
    return state.get("run_id") if state else None


def _finite_weights(model: nn.Module) -> bool:
    """One host sync: a step can leave NaN weights behind a finite loss (the next epoch's loss shows it,
    but by then the checkpoint would hold them)."""
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


def _format(metrics: Metrics) -> str:
    return " ".join(f"{key}={value:.4g}" for key, value in metrics.items())


def train_epoch(
    run: Training[Batch], batches: Sequence[Batch], bar: Any, log_every: int, heartbeat: Optional[Heartbeat] = None
) -> Metrics:
    """One pass over `batches`: forward, backward, optimizer and scheduler step; mean of every output."""
    run.model.train()
    sums: dict[str, torch.Tensor] = {}
    for i, batch in enumerate(batches, 1):
        outputs = run.step(batch)
        run.optimizer.zero_grad(set_to_none=True)
        outputs["loss"].backward()
        run.optimizer.step()
        if run.scheduler is not None:
            run.scheduler.step()
        for key, value in outputs.items():
            sums[key] = sums.get(key, 0) + value.detach()
        if i % log_every == 0 and not bar.disable:
            bar.set_postfix(loss=f"{sums['loss'].item() / i:.4f}", batch=f"{i}/{len(batches)}")
        if heartbeat is not None:
            heartbeat.step(i, len(batch) if hasattr(batch, "__len__") else 0)
    return {key: float(value) / len(batches) for key, value in sums.items()}


def check_finite(run: Training[Batch], loop: LoopConfig, epoch: int, loss: float) -> None:
    """Stop a diverged run before its NaNs reach a checkpoint; the last good checkpoint is kept."""
    if math.isfinite(loss) and _finite_weights(run.model):
        return
    last = (
        f"the last good checkpoint ({loop.checkpoint}, epoch {epoch - 1}) is kept; "
        if loop.checkpoint and epoch > 1
        else ""
    )
    what = f"loss became {loss}" if not math.isfinite(loss) else "weights became NaN/Inf"
    raise TrainingDivergedError(f"{loop.desc}: {what} in epoch {epoch}; {last}try a lower learning rate")


def measure(run: Training[Batch], batches: Sequence[Batch], epoch: int, metrics: Metrics) -> Metrics:
    """The epoch's training metrics plus batch diagnostics, held-out metrics and the learning rate."""
    if run.batch_metrics is not None:
        metrics.update(run.batch_metrics(batches))
    if run.validate is not None:
        run.model.eval()
        metrics.update(run.validate(epoch))
    metrics["lr"] = run.optimizer.param_groups[0]["lr"]
    return metrics


def resume(run: Training[Batch], loop: LoopConfig) -> ResumeState:
    """The progress to continue from: a matching checkpoint's, or a fresh start."""
    state = checkpoint.load(loop.checkpoint, loop.config_hash, loop.desc, restart=loop.restart)
    if state is None or loop.checkpoint is None:
        return ResumeState(epoch=0, history=[], selection=Selection(loop.mode), run_id=run.run_id)
    progress = checkpoint.restore(state, loop.checkpoint, run.model, run.optimizer, run.scheduler, run.state, loop.mode)
    tqdm.write(f"{loop.desc}: resuming from {loop.checkpoint} after epoch {progress.epoch}")
    progress.run_id = run.run_id
    return progress


def fit(run: Training[Batch], loop: LoopConfig) -> FitResult:
    """Train for `loop.epochs` epochs (resuming from `loop.checkpoint` when one matches the config)."""
    progress = resume(run, loop)
    selection, history = progress.selection, progress.history
    writes = loop.checkpoint is not None and loop.writer
    bar = tqdm(
        total=loop.epochs,
        initial=progress.epoch,
        desc=loop.desc,
        unit="epoch",
        dynamic_ncols=True,
        disable=None if loop.writer else True,
    )
    stopped_early = False
    if loop.log_file is not None and loop.writer:  # the first checkpoint may come epochs after the first log line
        loop.log_file.parent.mkdir(parents=True, exist_ok=True)
    for epoch in range(progress.epoch + 1, loop.epochs + 1):
        torch.manual_seed(epoch_seed(loop.seed, epoch))
        batches = run.batches(epoch)
        quiet = bar.disable and loop.writer  # a log file, not a terminal: a line a minute inside the epoch
        heartbeat = Heartbeat(loop.desc, epoch, loop.epochs, len(batches), loop.heartbeat_s) if quiet else None
        metrics = train_epoch(run, batches, bar, loop.log_every, heartbeat)
        check_finite(run, loop, epoch, metrics["loss"])
        metrics = measure(run, batches, epoch, metrics)
        history.append({"epoch": epoch, **metrics})
        selection.update(epoch, metrics[loop.monitor] if loop.monitor is not None else None, run.model)

        bar.update(1)
        bar.set_postfix_str(_format({k: v for k, v in metrics.items() if k != "lr"}))
        if bar.disable and loop.writer:
            print(f"{loop.desc} epoch {epoch}/{loop.epochs} {_format(metrics)}", file=sys.stderr, flush=True)
        stopped_early = loop.patience is not None and selection.bad_epochs >= loop.patience
        if (
            writes
            and loop.checkpoint is not None
            and (stopped_early or epoch == loop.epochs or epoch % loop.checkpoint_every == 0)
        ):
            progress.epoch = loop.epochs if stopped_early else epoch
            checkpoint.save(
                loop.checkpoint, loop.config_hash, progress, run.model, run.optimizer, run.scheduler, run.state
            )
        if loop.log_file is not None and loop.writer:
            with loop.log_file.open("a") as handle:
                handle.write(json.dumps({"stage": loop.desc, **history[-1]}) + "\n")
        if run.on_epoch is not None:  # after the checkpoint: a failing logger cannot lose the epoch
            run.on_epoch(epoch, metrics)
        if stopped_early:
            tqdm.write(f"{loop.desc}: early stop after epoch {epoch} (best epoch {selection.best_epoch})")
            break
    bar.close()

    if selection.best_state is not None:
        run.model.load_state_dict(selection.best_state)
    best = history[selection.best_epoch - 1] if history and selection.best_epoch else {}
    return FitResult(history=history, best_epoch=selection.best_epoch, best=best, stopped_early=stopped_early)


@torch.no_grad()
def map_batches(fn: Callable[[np.ndarray], Any], n: int, batch_size: int, desc: str = "") -> Any:
    """Apply `fn` to index chunks 0..n and concatenate the results (a tensor or a dict of tensors)."""
    parts = [
        fn(np.arange(i, min(i + batch_size, n)))
        for i in tqdm(range(0, n, batch_size), desc=desc, leave=False, disable=None)
    ]
    if isinstance(parts[0], dict):
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    return torch.cat(parts)
