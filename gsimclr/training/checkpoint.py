"""Resume checkpoints of the training loop: everything an interrupted run needs to continue exactly.

A checkpoint is tied to an identity string (the params sections, data digest, upstream files and seed
the run was started from, see `StageContext.config_hash`); one of another identity is never resumed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from torch import nn
from tqdm.auto import tqdm

from gsimclr.system.errors import UserError
from gsimclr.system.storage import load_torch, save_torch

KIND = "gsimclr-resume"


@dataclass
class Selection:
    """Best-epoch selection and early stopping on a validation metric (or the last epoch without one)."""

    mode: str = "min"
    best_value: Optional[float] = None
    best_epoch: int = 0
    best_state: Optional[dict[str, Any]] = None
    bad_epochs: int = 0

    def update(self, epoch: int, value: Optional[float], model: nn.Module) -> None:
        """Record `epoch`; `value` None: no monitor, the last epoch is the selected one."""
        if value is None:
            self.best_epoch = epoch
        elif self.best_value is None or (value < self.best_value if self.mode == "min" else value > self.best_value):
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1


@dataclass
class ResumeState:
    """What one checkpoint holds besides the model/optimizer/scheduler/extra state dicts."""

    epoch: int
    history: list[dict[str, float]]
    selection: Selection
    run_id: Optional[str]


def load(
    path: Optional[Path], identity: str, desc: str, restart: bool = False, quiet: bool = False
) -> Optional[dict[str, Any]]:
    """The raw checkpoint at `path` if it belongs to `identity`; None when there is none to resume.

    `restart`: the checkpoint is deleted instead (the user asked to train from scratch). `quiet`: a peek that
    says nothing (the loop that resumes says it once). A damaged checkpoint is a `UserError` naming --restart."""
    if path is None or not path.exists():
        return None
    if restart:
        path.unlink()
        return None
    try:
        state = load_torch(path)
    except UserError as exc:
        raise UserError(f"{exc}: re-run with --restart to train from scratch (it deletes the checkpoint)") from None
    if state.get("kind") != KIND or state.get("config_hash") != identity:
        if not quiet:
            tqdm.write(f"{desc}: checkpoint {path} is for another configuration; starting over")
        return None
    return state


def restore(
    state: dict[str, Any], path: Path, model: nn.Module, optimizer: Any, scheduler: Any, extra: Any, mode: str
) -> ResumeState:
    """Load a checkpoint's state dicts into the live objects; a model of another shape is a `UserError`."""
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise UserError(f"{path}: checkpoint does not fit this model ({str(exc).splitlines()[0]})") from None
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if extra is not None:
        extra.load_state_dict(state["extra"])
    selection = Selection(mode, state["best_value"], state["best_epoch"], state["best_state"], state["bad_epochs"])
    return ResumeState(state["epoch"], state["history"], selection, state.get("run_id"))


def save(
    path: Path, identity: str, progress: ResumeState, model: nn.Module, optimizer: Any, scheduler: Any, extra: Any
) -> None:
    """Write the checkpoint atomically (a kill mid-write leaves the previous one intact)."""
    selection = progress.selection
    save_torch(
        {
            "kind": KIND,
            "config_hash": identity,
            "epoch": progress.epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "history": progress.history,
            "best_value": selection.best_value,
            "best_epoch": selection.best_epoch,
            "best_state": selection.best_state,
            "bad_epochs": selection.bad_epochs,
            "run_id": progress.run_id,
            "extra": extra.state_dict() if extra is not None else None,
        },
        path,
    )
