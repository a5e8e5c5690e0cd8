"""Stage 3: SimCLR or G-SimCLR pretraining; one loop, and the batch sampler is the only difference.

Under `torchrun` the same stage trains data-parallel (see `gsimclr.distributed`); only rank 0 writes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import torch

from gsimclr import plots
from gsimclr.augment import ViewAugment
from gsimclr.data import load_dataset, to_float
from gsimclr.distributed import check_batch, join_world, wrap_model
from gsimclr.engine import LoopConfig, Training, fit, resumable_run_id
from gsimclr.errors import MissingUpstreamError, UserError
from gsimclr.losses import nt_xent
from gsimclr.models.heads import SimCLRNet
from gsimclr.samplers import BatchSampler, GuidedBatchSampler, RandomBatchSampler, batch_stats
from gsimclr.stages.context import StageContext, finish
from gsimclr.storage import save_torch, write_csv, write_json
from gsimclr.tracking import StageRun, stage_run

RANK_SEED_STRIDE = 1_000_003
"""Offsets each rank's augmentation RNG, so shards of one batch do not share augmentation draws."""

STAGE = "pretrain"


def read_pseudo_labels(ctx: StageContext, n_images: int) -> np.ndarray:
    path = ctx.layout.pseudo_labels
    if not path.exists():
        raise MissingUpstreamError(f"pseudo labels not found: {path} (run `gsimclr cluster` first)")
    try:
        table = pd.read_csv(path)
        labels = table.sort_values("index")["cluster"].to_numpy(dtype=np.int64)
        indices = table["index"].to_numpy()
    except (KeyError, ValueError, pd.errors.ParserError):
        raise UserError(f"{path}: expected columns index,cluster with integer values") from None
    if len(labels) != n_images or set(indices) != set(range(n_images)):
        raise UserError(f"{path} labels {len(labels)} images but the training split has {n_images} (re-run `gsimclr cluster`)")
    if labels.min() < 0:
        raise UserError(f"{path}: cluster ids must be non-negative")
    return labels


def make_sampler(ctx: StageContext, method: str, n_images: int) -> tuple[BatchSampler, Optional[np.ndarray]]:
    batch_size = ctx.params.pretrain.batch_size
    if batch_size > n_images:
        raise UserError(f"pretrain.batch_size={batch_size} is larger than the {n_images} training images")
    if method == "simclr":
        return RandomBatchSampler(n_images, batch_size, ctx.seed), None
    pseudo = read_pseudo_labels(ctx, n_images)
    if ctx.params.guidance.batches == "random":
        return RandomBatchSampler(n_images, batch_size, ctx.seed), pseudo
    return GuidedBatchSampler(pseudo, batch_size, ctx.seed), pseudo


def pretrain(ctx: StageContext, method: str) -> dict[str, float]:
    params, cfg = ctx.params, ctx.params.pretrain
    world = join_world(ctx.device)
    check_batch(world, cfg.batch_size)
    data = load_dataset(params.data)
    images = data.train_x.to(ctx.device)
    true_labels = data.train_y.numpy()  # measured, never trained on
    sampler, pseudo = make_sampler(ctx, method, len(images))
    if pseudo is not None and cfg.batch_size != params.cluster.k and world.is_main:
        print(f"note: pretrain.batch_size={cfg.batch_size} != cluster.k={params.cluster.k}; guided batches "
              "still spread every cluster as evenly as possible, but cannot hold exactly one image per cluster")

    net = SimCLRNet(params.model, data.channels).to(ctx.device)
    if ctx.device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    model = wrap_model(torch.compile(net) if cfg.compile else net, world, ctx.device)
    augment = ViewAugment(cfg.augment)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * len(sampler))

    false_negatives = params.guidance.false_negatives if method == "gsimclr" else "keep"

    def step(idx: np.ndarray) -> dict[str, torch.Tensor]:
        local, sizes = world.shard(idx)
        x = to_float(images[local])
        with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            z1, z2 = model(torch.cat([augment(x), augment(x)])).float().chunk(2)
        clusters = torch.as_tensor(pseudo[idx]) if false_negatives != "keep" else None
        loss = nt_xent(world.gather(z1, sizes), world.gather(z2, sizes), cfg.temperature, clusters, false_negatives)
        return {"loss": loss}

    def diagnostics(batches: list[np.ndarray]) -> dict[str, float]:
        _, same_class = batch_stats(batches, true_labels)
        out = {"same_class_pairs_per_batch": same_class}
        if pseudo is not None:
            out["distinct_pseudo_labels_per_batch"], _ = batch_stats(batches, pseudo)
        return out

    name = f"pretrain_{method}"
    loop = LoopConfig(
        desc=name, epochs=cfg.epochs, seed=ctx.seed + RANK_SEED_STRIDE * world.rank, checkpoint=ctx.resume_path(name),
        checkpoint_every=params.checkpoint_every, writer=world.is_main,
        config_hash=ctx.config_hash("data", "model", "pretrain", "guidance") + f"{method}-world{world.size}",
    )
    with stage_run(STAGE, params, method, seed=ctx.seed, resume_run_id=resumable_run_id(loop), enabled=world.is_main) as tracker:
        result = fit(
            Training(
                model=model, optimizer=optimizer, scheduler=scheduler, batches=sampler.batches, step=step,
                batch_metrics=diagnostics, on_epoch=lambda e, m: tracker.log_metrics(m, step=e), run_id=tracker.run_id,
            ),
            loop,
        )
        last = result.history[-1]
        metrics = {key: value for key, value in last.items() if key not in ("epoch", "lr")}
        metrics["epochs"] = len(result.history)
        metrics["processes"] = world.size
        if world.is_main:
            save_outputs(ctx, method, net, data.channels, result.history, metrics, tracker)
    return metrics


def save_outputs(ctx: StageContext, method: str, net: SimCLRNet, channels: int, history: list[dict],
                 metrics: dict[str, float], tracker: StageRun) -> None:
    """The pretrained model, metrics, loss curve and run record (rank 0 only)."""
    layout, name, temperature = ctx.layout, f"pretrain_{method}", ctx.params.pretrain.temperature
    save_torch({"model": net.state_dict(), "in_channels": channels, "method": method,
                "config": ctx.params.model_dump(mode="json")}, layout.pretrained(method))
    write_json(layout.metrics(STAGE, method), metrics)
    write_csv(layout.plot(f"{name}_loss.csv"), [{"epoch": r["epoch"], f"{method}_loss": r["loss"]} for r in history])
    figure = plots.loss_curves(history, ["loss"], f"{method}: NT-Xent loss (T={temperature})")
    plots.save_png(figure, layout.plot(f"{name}_loss.png"))
    tracker.log_figure(figure, f"{name}_loss.png")
    plots.close(figure)
    tracker.log_artifact(layout.pretrained(method), "model")
    finish(ctx, STAGE, tracker.run_id, method, name)
