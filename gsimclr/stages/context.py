"""What every stage receives, and the bookkeeping every stage does when it finishes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from gsimclr.config import Params
from gsimclr.data import ImageSplits
from gsimclr.layout import Layout
from gsimclr.machine import hardware
from gsimclr.storage import file_digest, write_json


@dataclass(frozen=True)
class StageContext:
    params: Params
    seed: int
    """The seed of this run (one of `params.seeds`); `layout` is already scoped to it."""
    layout: Layout
    device: torch.device
    restart: bool = False
    """Ignore (and replace) a resume checkpoint instead of continuing from it."""
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # Every stage starts from the same RNG state, so model initialisation is reproducible too
        # (the engine re-seeds each epoch from (seed, epoch) on top of this).
        torch.manual_seed(self.seed)
        np.random.seed(self.seed)

    def config_hash(self, *sections: str, data: ImageSplits, inputs: Sequence[Path] = ()) -> str:
        """Identity of a resume checkpoint: the named params sections, the training data it saw, the bytes
        of the upstream files it was built from (pseudo labels, a pretrained model) and this run's seed.
        A checkpoint of another identity is never resumed, so changed inputs are never reported under a
        run that started from the old ones."""
        files = "".join(f"-{file_digest(path)}" for path in inputs)
        return f"{self.params.section_hash(*sections)}-{data.digest}{files}-seed{self.seed}"

    def resume_path(self, name: str):
        path = self.layout.resume(name)
        if self.restart:
            path.unlink(missing_ok=True)
        return path


def finish(ctx: StageContext, stage: str, run_id: str, method: Optional[str] = None, *resume: str) -> None:
    """Record the MLflow run and wall time for `compare`, then drop the stage's resume checkpoints (their .log.jsonl stays)."""
    write_json(
        ctx.layout.run_record(stage, method),
        {"run_id": run_id, "wall_s": round(time.time() - ctx.started, 1), "device": str(ctx.device), "hardware": hardware()},
    )
    for name in resume:
        ctx.layout.resume(name).unlink(missing_ok=True)
