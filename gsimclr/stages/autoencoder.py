"""Stage 1: the denoising autoencoder, early-stopped on a validation split carved from the training data."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gsimclr.data.device_images import DeviceImages, reading_ahead
from gsimclr.data.splits import split_indices, to_float
from gsimclr.method.samplers import epoch_rng, shuffled_batches
from gsimclr.models import build
from gsimclr.models.autoencoder import DenoisingAutoencoder
from gsimclr.outputs import plots
from gsimclr.outputs.metrics import epoch_curves
from gsimclr.pipeline.tracking import StageRun, stage_run
from gsimclr.pipeline.tracking_names import registered_model_name
from gsimclr.settings.names import Stage
from gsimclr.stages.context import StageContext, finish, log_training_data, model_example
from gsimclr.system.errors import UserError
from gsimclr.system.storage import save_torch, write_csv, write_json
from gsimclr.training.engine import FitResult, Training, fit, map_batches, resumable_run_id

STAGE: Stage = "autoencoder"


def check_image_size(image_size: int, filters: list[int]) -> None:
    """Each encoder block halves the image: the size must survive every max-pool exactly."""
    if image_size % 2 ** len(filters):
        raise UserError(
            f"data.image_size={image_size} must be divisible by 2**len(autoencoder.filters)="
            f"{2 ** len(filters)} (one max-pool per encoder block)"
        )


def reconstruction_error(model: DenoisingAutoencoder, images: DeviceImages, indices: np.ndarray) -> float:
    """Mean squared reconstruction error per pixel of the images at `indices` (inputs without noise: the
    model adds noise only in training mode)."""

    def batch_sse(idx: np.ndarray) -> torch.Tensor:
        x = to_float(images[indices[idx]])
        return F.mse_loss(model(x), x, reduction="sum").reshape(1)

    return float(map_batches(batch_sse, len(indices), 256).sum()) / (len(indices) * images[0].numel())


def save_outputs(
    ctx: StageContext, model: DenoisingAutoencoder, example: np.ndarray, result: FitResult, tracker: StageRun
) -> dict[str, float]:
    """The selected autoencoder, its metrics, loss curves and run record."""
    layout = ctx.layout
    channels = example.shape[1]
    save_torch({"model": model.state_dict(), "in_channels": channels, "config": ctx.config}, layout.autoencoder)
    metrics = {
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_loss": result.best["loss"],
        "val_loss": result.best["val_loss"],
    }
    write_json(layout.metrics("autoencoder"), metrics)
    curves = [{"epoch": r["epoch"], "train_loss": r["loss"], "val_loss": r["val_loss"]} for r in result.history]
    write_csv(layout.autoencoder_loss("csv"), curves)
    figure = plots.loss_curves(
        [{"epoch": r["epoch"], "train": r["train_loss"], "validation": r["val_loss"]} for r in curves],
        ["train", "validation"],
        "denoising autoencoder: reconstruction MSE",
    )
    tracker.publish_figure(figure, layout.autoencoder_loss("png"))
    tracker.log_metrics(metrics)
    description = (
        f"The paper's denoising autoencoder on {ctx.params.data.name} (seed {ctx.seed}, best of "
        f"{len(result.history)} epochs): float images in [0, 1] in, their reconstruction out. Its bottleneck "
        "features are what `cluster` turns into pseudo labels."
    )
    tracker.log_model(model, example, registered_model_name(ctx.params, "autoencoder"), layout.autoencoder, description)
    finish(ctx, STAGE, tracker.run_id, trained=[layout.autoencoder_training])
    return metrics


def train_autoencoder(ctx: StageContext) -> dict[str, float]:
    """Train the paper's denoising autoencoder on the training images (Gaussian input noise, MSE loss),
    early-stopped on the reconstruction error of a random validation split, and save the best epoch.

    Returns:
        best_epoch, epochs_run, and the best epoch's train_loss and val_loss (also in metrics/).
    """
    params, cfg = ctx.params, ctx.params.autoencoder
    check_image_size(params.data.image_size, list(cfg.filters))
    data = ctx.dataset()
    images = ctx.on_device(data.unlabelled_x)  # the training split's images, or the unlabelled pool
    # Unsupervised: the validation split is random, not stratified by the (unused) labels.
    split = split_indices(len(images), params.data.val_fraction, ctx.seed)
    model = build.autoencoder(cfg, data.channels).to(ctx.device)

    def step(idx: np.ndarray) -> dict[str, torch.Tensor]:
        x = to_float(images[idx])
        return {"loss": F.mse_loss(model(x), x)}

    files = ctx.layout.autoencoder_training
    loop = ctx.training_loop(
        "autoencoder", cfg.epochs, files, ctx.config_hash(data), monitor="val_loss", mode="min", patience=cfg.patience
    )
    with stage_run(STAGE, params, ctx.config, seed=ctx.seed, resume_run_id=resumable_run_id(loop)) as tracker:
        log_training_data(tracker, ctx, data)
        result = fit(
            Training(
                model=model,
                optimizer=torch.optim.Adam(model.parameters(), lr=cfg.lr),
                batches=reading_ahead(
                    images, lambda epoch: shuffled_batches(split.fit, cfg.batch_size, epoch_rng(ctx.seed, epoch))
                ),
                step=step,
                validate=lambda epoch: {"val_loss": reconstruction_error(model, images, split.val)},
                on_epoch=lambda e, m: tracker.log_metrics(epoch_curves(m), step=e),
                run_id=tracker.run_id,
            ),
            loop,
        )
        return save_outputs(ctx, model, model_example(images), result, tracker)
