"""What every stage receives, and the bookkeeping every stage does when it finishes."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from gsimclr.data import prepared
from gsimclr.data.device_images import DeviceImages, device_images
from gsimclr.data.splits import ImageSplits, to_float
from gsimclr.pipeline.layout import Layout, TrainingFiles
from gsimclr.pipeline.tracking import StageRun
from gsimclr.settings import declared
from gsimclr.settings.config import Params
from gsimclr.settings.names import EvalMethod, Stage, Stream
from gsimclr.system.machine import hardware
from gsimclr.system.storage import file_digest, write_json
from gsimclr.training.engine import LoopConfig


@dataclass(frozen=True)
class StageContext:
    """What one stage run receives: its declared params, seed, paths and device."""

    params: Params
    """The stage's view of the params: reading an entry it does not declare raises (`gsimclr.settings.declared`)."""
    seed: int
    """The seed of this run (one of `params.seeds`); `layout` is already scoped to it."""
    layout: Layout
    device: torch.device
    restart: bool = False
    """Delete (and replace) resume checkpoints instead of continuing from them."""
    config: dict[str, Any] = field(default_factory=dict)
    """The declared entries' values: logged with the run, stored with its models, hashed into its identity."""
    started: float = field(default_factory=time.time)
    stream: Stream = "auto"
    """Whether splits are copied onto the device or streamed from the prepared arrays (`device_images`)."""
    learned: dict[str, int] = field(default_factory=dict)
    """Facts the stage learns as it runs that its run record keeps (`unreadable_images`: image files of the dataset
    left out as undecodable, from `log_training_data`)."""

    def dataset(self) -> ImageSplits:
        """The stage's data: the `prepare` stage's memory-mapped arrays where they exist, else decoded now."""
        cfg = self.params.data
        key = prepared.dataset_key(cfg)
        return prepared.load(cfg, self.layout.prepared_data(key), self.layout.source_stamp(key))

    def on_device(self, host: torch.Tensor) -> DeviceImages:
        """A split indexed by batch on this stage's device (resident where it fits, else streamed), seen by
        the network at `data.image_size`."""
        return device_images(host, self.device, self.params.data.image_size, self.stream)

    def config_hash(self, data: ImageSplits, inputs: Sequence[Path] = ()) -> str:
        """Identity of a resume checkpoint: the declared params, the training data it saw, the bytes of the
        upstream files it was built from (pseudo labels, a pretrained model) and this run's seed. A
        checkpoint of another identity is never resumed, so changed inputs are never reported under a
        run that started from the old ones."""
        params = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()[:16]
        files = "".join(f"-{file_digest(path)}" for path in inputs)
        return f"{params}-{data.digest}{files}-seed{self.seed}"

    def training_loop(self, desc: str, epochs: int, files: TrainingFiles, identity: str, **options: Any) -> LoopConfig:
        """The epoch loop of one training run of this stage: resumable from `files.checkpoint` when its
        identity (`config_hash` plus what tells the stage's runs apart) matches, logged to `files.log`.
        `options`: the run's selection (`monitor`, `mode`, `patience`) or a data-parallel rank's `seed`/`writer`."""
        settings: dict[str, Any] = {
            "seed": self.seed,
            "checkpoint": files.checkpoint,
            "log_file": files.log,
            "checkpoint_every": self.params.checkpoint_every,
            "restart": self.restart,
        }
        return LoopConfig(desc=desc, epochs=epochs, config_hash=identity, **{**settings, **options})


def stage_context(
    params: Params,
    stage: str,
    method: Optional[str],
    seed: int,
    layout: Layout,
    device: torch.device,
    restart: bool = False,
    stream: Stream = "auto",
) -> StageContext:
    """The context of one stage run, its params narrowed to what the stage declares."""
    entries = declared.declared(stage, method)
    return StageContext(
        declared.view(params, entries),
        seed,
        layout.for_seed(seed),
        device,
        restart,
        declared.values(params, entries),
        stream=stream,
    )


def log_training_data(tracker: StageRun, ctx: StageContext, data: ImageSplits) -> None:
    """Record the dataset a stage trained on (name, root, content digest, split sizes, the unlabelled pool's folder
    and size) on its MLflow run."""
    cfg = ctx.params.data
    name = cfg.name if cfg.name != "imagefolder" or not cfg.root else f"imagefolder-{Path(cfg.root).name}"
    sizes = {"train": len(data.train_y), "test": len(data.test_y)}
    if data.pool is not None:
        sizes["pool"] = len(data.pool.paths)
        tracker.set_tag("pool", str(cfg.pool))
    tracker.log_dataset(name, cfg.root, data.digest, sizes, data.unreadable)
    if data.unreadable:
        ctx.learned["unreadable_images"] = data.unreadable


def model_example(images: DeviceImages) -> np.ndarray:
    """Two training images as the float batch a logged model takes: its MLflow input example."""
    return to_float(images[:2].cpu()).numpy()


def seed_everything(seed: int) -> None:
    """Seed torch's and numpy's global RNGs, so model initialisation is reproducible (the engine then
    re-seeds each epoch from (seed, epoch))."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def finish(
    ctx: StageContext,
    stage: Stage,
    run_id: Optional[str],
    method: Optional[EvalMethod] = None,
    trained: Sequence[TrainingFiles] = (),
) -> None:
    """Record the MLflow run and wall time for `compare`, then drop the stage's resume checkpoints (their
    epoch logs stay)."""
    write_json(
        ctx.layout.run_record(stage, method),
        {
            "run_id": run_id,
            "wall_s": round(time.time() - ctx.started, 1),
            "device": str(ctx.device),
            "hardware": hardware(),
            **ctx.learned,
        },
    )
    for files in trained:
        files.checkpoint.unlink(missing_ok=True)
