"""The one training loop behind every stage: autoencoder, SimCLR/G-SimCLR, probes, fine-tuning, supervised.

It owns what each of them would otherwise rewrite: per-epoch seeding (so a resumed run draws the same
batches and augmentations as an uninterrupted one), the progress bar, NaN/Inf detection with one host
sync per logging interval instead of per step, early stopping and best-epoch restore on a validation
metric, atomic per-epoch checkpoints with automatic resume, and a JSON line per epoch in a log file.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Literal, Optional, Protocol, Sequence, TypeVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gsimclr.errors import TrainingDivergedError, UserError
from gsimclr.storage import load_torch, save_torch

Batch = TypeVar("Batch")
Metrics = dict[str, float]


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed for one epoch's torch RNG stream, derived only from (seed, epoch)."""
    return (seed * 1_000_003 + epoch * 7_919) % (2**63 - 1)


@dataclass
class LoopConfig:
    """How long to train, what to select on, and where to checkpoint."""

    desc: str
    epochs: int
    seed: int
    checkpoint: Optional[Path] = None
    checkpoint_every: int = 1
    """Epochs between resume checkpoints (the last epoch and an early stop are always saved)."""
    writer: bool = True
    """False on data-parallel ranks other than 0: they resume from the checkpoint but never write it."""
    config_hash: str = ""
    monitor: Optional[str] = None
    mode: Literal["min", "max"] = "min"
    patience: Optional[int] = None
    log_every: int = 20


@dataclass
class FitResult:
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
    """The tracking run id saved in a resumable checkpoint for this config, if any."""
    state = _load_resumable(loop)
    return state.get("run_id") if state else None


def _load_resumable(loop: LoopConfig) -> Optional[dict]:
    if loop.checkpoint is None or not loop.checkpoint.exists():
        return None
    state = load_torch(loop.checkpoint)
    if state.get("kind") != "gsimclr-resume" or state.get("config_hash") != loop.config_hash:
        tqdm.write(f"{loop.desc}: checkpoint {loop.checkpoint} is for another configuration; starting over")
        return None
    return state


def _finite_weights(model: nn.Module) -> bool:
    """One host sync: a step can leave NaN weights behind a finite loss (the next epoch's loss shows it,
    but by then the checkpoint would hold them)."""
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


def _better(value: float, best: Optional[float], mode: str) -> bool:
    return best is None or (value < best if mode == "min" else value > best)


def _format(metrics: Metrics) -> str:
    return " ".join(f"{key}={value:.4g}" for key, value in metrics.items())


def fit(run: Training[Batch], loop: LoopConfig) -> FitResult:
    """Train for `loop.epochs` epochs (resuming from `loop.checkpoint` when one matches the config)."""
    history: list[Metrics] = []
    best_value: Optional[float] = None
    best_epoch, best_state, bad_epochs, start = 0, None, 0, 1

    state = _load_resumable(loop)
    if state is not None:
        try:
            run.model.load_state_dict(state["model"])
        except (RuntimeError, KeyError) as exc:
            raise UserError(f"{loop.checkpoint}: checkpoint does not fit this model ({str(exc).splitlines()[0]})") from None
        run.optimizer.load_state_dict(state["optimizer"])
        if run.scheduler is not None:
            run.scheduler.load_state_dict(state["scheduler"])
        if run.state is not None:
            run.state.load_state_dict(state["extra"])
        history, best_value, best_epoch = state["history"], state["best_value"], state["best_epoch"]
        best_state, bad_epochs, start = state["best_state"], state["bad_epochs"], state["epoch"] + 1
        tqdm.write(f"{loop.desc}: resuming from {loop.checkpoint} after epoch {state['epoch']}")

    writes = loop.checkpoint is not None and loop.writer
    log_file = loop.checkpoint.with_suffix(".log.jsonl") if writes else None
    bar = tqdm(total=loop.epochs, initial=start - 1, desc=loop.desc, unit="epoch", dynamic_ncols=True,
               disable=None if loop.writer else True)
    stopped_early = False
    for epoch in range(start, loop.epochs + 1):
        torch.manual_seed(epoch_seed(loop.seed, epoch))
        batches = run.batches(epoch)
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
            if i % loop.log_every == 0 and not bar.disable:
                bar.set_postfix(loss=f"{sums['loss'].item() / i:.4f}", batch=f"{i}/{len(batches)}")
        metrics = {key: float(value) / len(batches) for key, value in sums.items()}
        if not math.isfinite(metrics["loss"]) or not _finite_weights(run.model):
            last = f"the last good checkpoint ({loop.checkpoint}, epoch {epoch - 1}) is kept; " if loop.checkpoint and epoch > 1 else ""
            what = f"loss became {metrics['loss']}" if not math.isfinite(metrics["loss"]) else "weights became NaN/Inf"
            raise TrainingDivergedError(f"{loop.desc}: {what} in epoch {epoch}; {last}try a lower learning rate")
        if run.batch_metrics is not None:
            metrics.update(run.batch_metrics(batches))
        if run.validate is not None:
            run.model.eval()
            metrics.update(run.validate(epoch))
        metrics["lr"] = run.optimizer.param_groups[0]["lr"]
        history.append({"epoch": epoch, **metrics})

        if loop.monitor is not None:
            if _better(metrics[loop.monitor], best_value, loop.mode):
                best_value, best_epoch, bad_epochs = metrics[loop.monitor], epoch, 0
                best_state = copy.deepcopy(run.model.state_dict())
            else:
                bad_epochs += 1
        else:
            best_epoch = epoch

        bar.update(1)
        bar.set_postfix_str(_format({k: v for k, v in metrics.items() if k != "lr"}))
        if bar.disable and loop.writer:
            print(f"{loop.desc} epoch {epoch}/{loop.epochs} {_format(metrics)}", file=sys.stderr, flush=True)
        stop = loop.patience is not None and bad_epochs >= loop.patience
        if writes and (stop or epoch == loop.epochs or epoch % loop.checkpoint_every == 0):
            save_torch(
                {
                    "kind": "gsimclr-resume", "config_hash": loop.config_hash, "epoch": loop.epochs if stop else epoch,
                    "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                    "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
                    "history": history, "best_value": best_value, "best_epoch": best_epoch,
                    "best_state": best_state, "bad_epochs": bad_epochs, "run_id": run.run_id,
                    "extra": run.state.state_dict() if run.state is not None else None,
                },
                loop.checkpoint,
            )
        if log_file is not None:
            with log_file.open("a") as handle:
                handle.write(json.dumps({"stage": loop.desc, **history[-1]}) + "\n")
        if run.on_epoch is not None:  # after the checkpoint: a failing logger cannot lose the epoch
            run.on_epoch(epoch, metrics)
        if stop:
            stopped_early = True
            tqdm.write(f"{loop.desc}: early stop after epoch {epoch} (best epoch {best_epoch})")
            break
    bar.close()

    if best_state is not None:
        run.model.load_state_dict(best_state)
    best = history[best_epoch - 1] if history and best_epoch else {}
    return FitResult(history=history, best_epoch=best_epoch, best=best, stopped_early=stopped_early)


@torch.no_grad()
def map_batches(fn: Callable[[np.ndarray], Any], n: int, batch_size: int, desc: str = "") -> Any:
    """Apply `fn` to index chunks 0..n and concatenate the results (a tensor or a dict of tensors)."""
    parts = [fn(np.arange(i, min(i + batch_size, n))) for i in tqdm(range(0, n, batch_size), desc=desc, leave=False, disable=None)]
    if isinstance(parts[0], dict):
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    return torch.cat(parts)
