"""Stage 1: the denoising autoencoder, early-stopped on a validation split carved from the training data."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gsimclr import plots
from gsimclr.data import load_dataset, split_indices, to_float
from gsimclr.engine import LoopConfig, Training, fit, map_batches, resumable_run_id
from gsimclr.errors import UserError
from gsimclr.models.autoencoder import DenoisingAutoencoder
from gsimclr.samplers import epoch_rng, shuffled_batches
from gsimclr.stages.context import StageContext, finish
from gsimclr.storage import save_torch, write_csv, write_json
from gsimclr.tracking import stage_run

STAGE = "train"


def build_autoencoder(ctx: StageContext, channels: int) -> DenoisingAutoencoder:
    cfg = ctx.params.autoencoder
    return DenoisingAutoencoder(channels, list(cfg.filters), cfg.kernel_size, cfg.noise_std)


def train_autoencoder(ctx: StageContext) -> dict[str, float]:
    params, cfg, layout = ctx.params, ctx.params.autoencoder, ctx.layout
    if params.data.image_size % 2 ** len(cfg.filters):
        raise UserError(
            f"data.image_size={params.data.image_size} must be divisible by 2**len(autoencoder.filters)="
            f"{2 ** len(cfg.filters)} (one max-pool per encoder block)"
        )
    data = load_dataset(params.data)
    images = data.train_x.to(ctx.device)
    # Unsupervised: the validation split is random, not stratified by the (unused) labels.
    split = split_indices(len(images), params.data.val_fraction, ctx.seed)
    model = build_autoencoder(ctx, data.channels).to(ctx.device)

    def step(idx: np.ndarray) -> dict[str, torch.Tensor]:
        x = to_float(images[idx])
        return {"loss": F.mse_loss(model(x), x)}

    def validate(epoch: int) -> dict[str, float]:
        def batch_sse(idx: np.ndarray) -> torch.Tensor:
            x = to_float(images[split.val[idx]])
            return F.mse_loss(model(x), x, reduction="sum").reshape(1)

        sse = map_batches(batch_sse, len(split.val), 256).sum()
        return {"val_loss": float(sse) / (len(split.val) * images[0].numel())}

    loop = LoopConfig(
        desc="autoencoder", epochs=cfg.epochs, seed=ctx.seed, checkpoint=ctx.resume_path("autoencoder"),
        checkpoint_every=ctx.params.checkpoint_every,
        config_hash=ctx.config_hash("data", "autoencoder", data=data), monitor="val_loss", mode="min",
        patience=cfg.patience,
    )
    with stage_run(STAGE, params, seed=ctx.seed, resume_run_id=resumable_run_id(loop)) as tracker:
        result = fit(
            Training(
                model=model,
                optimizer=torch.optim.Adam(model.parameters(), lr=cfg.lr),
                batches=lambda epoch: shuffled_batches(split.fit, cfg.batch_size, epoch_rng(ctx.seed, epoch)),
                step=step, validate=validate, on_epoch=lambda e, m: tracker.log_metrics(m, step=e),
                run_id=tracker.run_id,
            ),
            loop,
        )
        save_torch({"model": model.state_dict(), "in_channels": data.channels, "config": params.model_dump(mode="json")}, layout.autoencoder)
        metrics = {
            "best_epoch": result.best_epoch, "epochs_run": len(result.history),
            "train_loss": result.best["loss"], "val_loss": result.best["val_loss"],
        }
        write_json(layout.metrics("autoencoder"), metrics)
        write_csv(layout.plot("autoencoder_loss.csv"), [
            {"epoch": row["epoch"], "train_loss": row["loss"], "val_loss": row["val_loss"]} for row in result.history
        ])
        figure = plots.loss_curves(
            [{"epoch": r["epoch"], "train": r["loss"], "validation": r["val_loss"]} for r in result.history],
            ["train", "validation"], "denoising autoencoder: reconstruction MSE",
        )
        plots.save_png(figure, layout.plot("autoencoder_loss.png"))
        tracker.log_figure(figure, "autoencoder_loss.png")
        plots.close(figure)
        tracker.log_metrics({f"best_{k}": v for k, v in metrics.items()})
        tracker.log_artifact(layout.autoencoder, "model")
        finish(ctx, STAGE, tracker.run_id, None, "autoencoder")
    return metrics
