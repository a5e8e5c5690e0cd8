"""Stage 3: SimCLR or G-SimCLR pretraining; one loop, and the batch sampler is the only difference.

Under `torchrun` the same stage trains data-parallel (see `gsimclr.training.distributed`); only rank 0 writes.
"""

from __future__ import annotations

from typing import Any, Optional, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gsimclr.data.device_images import DeviceImages, reading_ahead
from gsimclr.data.splits import ImageSplits, split_indices, to_float
from gsimclr.evaluation.knn import KnnMonitor
from gsimclr.method.contrastive_step import ContrastiveStep, Precision
from gsimclr.method.losses import LABELLED_LOSSES
from gsimclr.method.neighbours import NeighbourDetector, SuspectDiagnostics
from gsimclr.method.pseudo_labels import PseudoLabels, incremental_share, read_pseudo_labels
from gsimclr.method.samplers import BatchDiagnostics, EpochBatches, RandomBatchSampler
from gsimclr.models import build
from gsimclr.models.embedder import Embedder
from gsimclr.models.heads import SimCLRNet
from gsimclr.outputs import plots
from gsimclr.outputs.metrics import PretrainMetrics, epoch_curves
from gsimclr.pipeline.tracking import StageRun, stage_run
from gsimclr.pipeline.tracking_names import registered_model_name
from gsimclr.settings.config import PretrainConfig
from gsimclr.settings.names import (
    METHOD_NAMES,
    NOT_MEASURED,
    ORACLE_LABEL,
    ORACLE_PREFIX,
    UNMEASURED_KEY,
    Method,
    Stage,
)
from gsimclr.stages.context import StageContext, finish, log_training_data
from gsimclr.system.errors import UserError
from gsimclr.system.storage import save_torch, write_csv, write_json
from gsimclr.training.device import resolve_precision
from gsimclr.training.distributed import World, check_batch, join_world, wrap_model
from gsimclr.training.engine import SEED_STRIDE, LoopConfig, Training, fit, map_batches, resumable_run_id
from gsimclr.training.optim import parameter_groups, warmup_cosine

STAGE: Stage = "pretrain"


def guidance_labels(
    ctx: StageContext, net: SimCLRNet, images: DeviceImages, data: ImageSplits, world: World
) -> PseudoLabels:
    """The G-SimCLR arm's labels by `guidance.labels`: the `cluster` stage's table, k-means of `net`'s own
    embeddings (also refreshing the table if `refresh_every` says so), or the true training labels -- read
    here only under `labels: oracle`, the upper bound every report marks as such."""
    params, guidance = ctx.params, ctx.params.guidance
    k = guidance.refresh_k or params.cluster.k
    if guidance.refresh_every and k > len(images):
        raise UserError(f"guidance.refresh_k (or cluster.k) = {k} is larger than the {len(images)} training images")
    project = net.backbone if guidance.refresh_features == "backbone" else net

    def embed() -> np.ndarray:
        net.eval()
        rows = map_batches(
            lambda idx: F.normalize(project(to_float(images[idx])), dim=1).float().cpu(), len(images), 256
        )
        return rows.numpy().astype(np.float64)

    return PseudoLabels(
        initial_labels(ctx, data),
        guidance.refresh_every,
        k,
        params.cluster.n_init,
        ctx.seed,
        embed,
        share=lambda labels: world.broadcast(labels, ctx.device),
        warmup_epochs=guidance.warmup_epochs,
        confident=lambda epoch: incremental_share(
            guidance.confident_share, epoch, guidance.warmup_epochs + 1, params.pretrain.epochs
        ),
    )


def initial_labels(ctx: StageContext, data: ImageSplits) -> Optional[np.ndarray]:
    """The labels guidance starts from: the autoencoder's table, none (the network is clustered first) or,
    for the oracle bound only, the true training labels (never of a pool: the settings refuse it)."""
    source = ctx.params.guidance.labels
    if source == "network":
        return None
    if source == "autoencoder":
        pool_paths = data.pool.paths if data.pool is not None else None
        return read_pseudo_labels(ctx.layout.pseudo_labels, len(data.unlabelled_x), pool_paths)
    oracle = data.train_y.numpy().astype(np.int64)
    if len(np.unique(oracle)) < 2 or oracle.min() < 0:
        raise UserError("guidance.labels=oracle needs a training split labelled with at least two classes")
    return oracle


def knn_monitor(ctx: StageContext, net: SimCLRNet, data: ImageSplits, images: DeviceImages) -> KnnMonitor:
    """The kNN monitor of `pretrain.knn` on the labelled training split `images`: fit-split memory bank,
    validation-split queries (the same stratified split `evaluate` selects on). Labels are only read here, to
    measure."""
    cfg = ctx.params.pretrain.knn
    split = split_indices(len(data.train_y), ctx.params.data.val_fraction, ctx.seed, labels=data.train_y)
    if cfg.every and cfg.k > len(split.fit):
        raise UserError(
            f"pretrain.knn.k={cfg.k} is larger than the kNN memory bank ({len(split.fit)} fit-split images)"
        )
    return KnnMonitor(
        features=lambda: map_batches(lambda idx: net.backbone(to_float(images[idx])), len(images), 256),
        labels=data.train_y.to(ctx.device),
        fit=split.fit,
        val=split.val,
        k=cfg.k,
        temperature=cfg.temperature,
        every=cfg.every,
        epochs=ctx.params.pretrain.epochs,
    )


def neighbour_detector(ctx: StageContext, method: Method) -> Optional[NeighbourDetector]:
    """The G-SimCLR arm's in-batch false-negative detector under `guidance.labels: neighbours`, else None."""
    guidance = ctx.params.guidance
    if method != "gsimclr" or guidance.labels != "neighbours":
        return None
    return NeighbourDetector(guidance.neighbours, guidance.warmup_epochs)


def epoch_batches(
    ctx: StageContext, n_images: int, labels: Optional[PseudoLabels], detector: Optional[NeighbourDetector] = None
) -> EpochBatches:
    """SimCLR's random batches, or G-SimCLR's stratified by `labels` (random under `guidance.batches: random`);
    the in-batch detector, with random batches, learns when each epoch starts."""
    batch_size = ctx.params.pretrain.batch_size
    if detector is not None:
        return EpochBatches(n_images, batch_size, ctx.seed, detector.start_epoch, guided=False)
    if labels is None:
        return EpochBatches(n_images, batch_size, ctx.seed)
    guided = ctx.params.guidance.batches == "guided"
    return EpochBatches(n_images, batch_size, ctx.seed, labels.refresh_if_due, guided)


def batch_diagnostics(
    ctx: StageContext,
    method: Method,
    data: ImageSplits,
    labels: Optional[PseudoLabels],
    detector: Optional[NeighbourDetector] = None,
) -> BatchDiagnostics | SuspectDiagnostics:
    """Per-epoch false-negative counts and pseudo-label (or suspect) quality: the true labels measure them, never
    train. The paper's arm (fixed autoencoder labels, batches only) and SimCLR keep the few metrics they always
    had."""
    if detector is not None:
        return SuspectDiagnostics(data.unlabelled_truth, detector)
    if method == "simclr" or labels is None:  # SimCLR never reads the guidance section
        return BatchDiagnostics(data.unlabelled_truth)
    guidance = ctx.params.guidance
    uses_labels = guidance.false_negatives in LABELLED_LOSSES
    beyond_paper = uses_labels or guidance.refresh_every > 0 or guidance.labels != "autoencoder"
    return BatchDiagnostics(
        data.unlabelled_truth, lambda: labels.current, loss_uses_labels=uses_labels, detailed=beyond_paper
    )


def sgd_warmup_cosine(cfg: PretrainConfig, model: nn.Module, n_batches: int) -> tuple[torch.optim.SGD, Any]:
    """SGD with momentum at the scaled learning rate, no decay on BatchNorm/biases if so configured,
    linear warm-up then cosine decay stepped per batch."""
    groups = parameter_groups(model, cfg.weight_decay, cfg.decay_norm_and_bias)
    optimizer = torch.optim.SGD(groups, lr=cfg.scaled_lr, momentum=cfg.momentum)
    return optimizer, warmup_cosine(optimizer, cfg.warmup_epochs * n_batches, cfg.epochs * n_batches)


def contrastive_step(
    ctx: StageContext,
    method: Method,
    model: nn.Module,
    images: DeviceImages,
    labels: Optional[PseudoLabels],
    world: World,
    detector: Optional[NeighbourDetector] = None,
) -> ContrastiveStep:
    """The training step of `method`: NT-Xent of two views per image; G-SimCLR's `guidance` says how
    same-pseudo-label pairs (or the detector's suspects) enter the loss (SimCLR keeps them as negatives, as the
    paper does)."""
    cfg, guidance = ctx.params.pretrain, ctx.params.guidance if method == "gsimclr" else None
    return ContrastiveStep(
        model=model,
        augment=build.view_augment(cfg.augment, ctx.params.data.image_size),
        images=lambda idx: to_float(images.stored(idx)),
        temperature=cfg.temperature,
        false_negatives=guidance.false_negatives if guidance is not None else "keep",
        tau_plus=guidance.tau_plus if guidance is not None else 0.0,
        pseudo_labels=(lambda: labels.current) if labels is not None else None,
        suspects=detector,
        precision=cast(Precision, resolve_precision(cfg.precision, ctx.device)),
        shards=world,
    )


def pretrain_loop(ctx: StageContext, method: Method, data: ImageSplits, world: World) -> LoopConfig:
    """Epochs, checkpoint and identity of one pretraining run (each rank's augmentation stream offset,
    so shards of one batch do not share augmentation draws)."""
    files = ctx.layout.pretrain_training(method)
    guidance = ctx.params.guidance
    reads_table = method == "gsimclr" and guidance.labels == "autoencoder" and guidance.reads_pseudo_labels
    inputs = [ctx.layout.pseudo_labels] if reads_table else []
    return ctx.training_loop(
        f"pretrain_{method}",
        ctx.params.pretrain.epochs,
        files,
        ctx.config_hash(data, inputs=inputs) + f"{method}-world{world.size}",
        seed=ctx.seed + SEED_STRIDE * world.rank,
        writer=world.is_main,
    )


def pretrain(ctx: StageContext, method: Method) -> PretrainMetrics:
    """SimCLR (random batches) or G-SimCLR (batches stratified by pseudo label) on the training images.

    One training loop for both (NT-Xent over two augmented views, SGD with warm-up and cosine decay), so
    the sampler is the only difference between the methods. Saves the pretrained network; logs the
    loss, the kNN monitor and batch diagnostics (true labels only measure) per epoch.
    """
    params, cfg = ctx.params, ctx.params.pretrain
    world = join_world(ctx.device)
    check_batch(world, cfg.batch_size)
    data = ctx.dataset()
    images = ctx.on_device(data.unlabelled_x)
    if cfg.batch_size > len(images):
        raise UserError(f"pretrain.batch_size={cfg.batch_size} is larger than the {len(images)} training images")
    net = build.simclr_net(params.model, data.channels).to(ctx.device)
    detector = neighbour_detector(ctx, method)
    reads_labels = method == "gsimclr" and params.guidance.reads_pseudo_labels
    labels = guidance_labels(ctx, net, images, data, world) if reads_labels else None
    if labels is not None and cfg.batch_size != params.cluster.k and world.is_main:
        print(
            f"note: pretrain.batch_size={cfg.batch_size} != cluster.k={params.cluster.k}; guided batches "
            "still spread every cluster as evenly as possible, but cannot hold exactly one image per cluster"
        )
    model = wrap_model(cast(nn.Module, torch.compile(net)) if cfg.compile else net, world, ctx.device)
    optimizer, scheduler = sgd_warmup_cosine(cfg, model, len(RandomBatchSampler(len(images), cfg.batch_size, ctx.seed)))
    monitor = knn_monitor(ctx, net, data, images if data.pool is None else ctx.on_device(data.train_x))
    batches = epoch_batches(ctx, len(images), labels, detector)
    step = contrastive_step(ctx, method, model, images, labels, world, detector)
    loop = pretrain_loop(ctx, method, data, world)
    oracle = method == "gsimclr" and params.guidance.labels == "oracle"
    resume = resumable_run_id(loop)
    with stage_run(STAGE, params, ctx.config, method, ctx.seed, resume, world.is_main, oracle) as tracker:
        log_training_data(tracker, ctx, data)
        tracker.set_tag("precision", step.precision)
        result = fit(
            Training(
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                batches=reading_ahead(images, batches, lambda b: world.shard(b)[0]),
                step=step,
                batch_metrics=batch_diagnostics(ctx, method, data, labels, detector),
                validate=monitor,
                on_epoch=lambda e, m: tracker.log_metrics(epoch_curves(m), step=e),
                run_id=tracker.run_id,
                state=labels,
            ),
            loop,
        )
        last = {key: value for key, value in result.history[-1].items() if key not in ("epoch", "lr")}
        metrics = PretrainMetrics(**last, epochs=len(result.history), processes=world.size)
        if world.is_main:
            stored = images.stored(np.arange(2)).cpu().numpy()  # the embedder's input example: uint8, as stored
            save_outputs(ctx, method, net, stored, result.history, metrics, tracker)
    return metrics


def save_outputs(
    ctx: StageContext,
    method: Method,
    net: SimCLRNet,
    example: np.ndarray,
    history: list[dict],
    metrics: PretrainMetrics,
    tracker: StageRun,
) -> None:
    """The pretrained model (registered in MLflow as its `Embedder`: stored images in, P1 | P2 | P3 out), metrics,
    loss and kNN curves and run record (rank 0 only)."""
    layout, temperature = ctx.layout, ctx.params.pretrain.temperature
    save_torch(
        {"model": net.state_dict(), "in_channels": example.shape[1], "method": method, "config": ctx.config},
        layout.pretrained(method),
    )
    unmeasured = {UNMEASURED_KEY: NOT_MEASURED} if metrics.same_class_pairs_per_batch is None else {}
    write_json(layout.metrics("pretrain", method), metrics.to_json() | unmeasured)
    tracker.log_metrics(metrics.to_json())
    for key, value in unmeasured.items():
        tracker.set_tag(key, value)
    write_csv(
        layout.pretrain_loss(method, "csv"), [{"epoch": r["epoch"], f"{method}_loss": r["loss"]} for r in history]
    )
    # Header only when the monitor is off, so a stale curve of an earlier run never survives.
    write_csv(
        layout.pretrain_knn(method),
        [{"epoch": r["epoch"], "knn_val_acc": r["knn_val_acc"]} for r in history if "knn_val_acc" in r],
        columns=["epoch", "knn_val_acc"],
    )
    tracker.publish_figure(
        plots.loss_curves(history, ["loss"], f"{method}: NT-Xent loss (T={temperature})"),
        layout.pretrain_loss(method, "png"),
    )
    # the oracle bound's backbone is registered under a name of its own, never as the method's newest version
    oracle = method == "gsimclr" and ctx.params.guidance.labels == "oracle"  # SimCLR never reads guidance
    registry = f"{ORACLE_PREFIX}-{method}" if oracle else method
    embedder = Embedder(net, ctx.params.data.image_size)
    arm_name = f"G-SimCLR, {ORACLE_LABEL}," if oracle else METHOD_NAMES[method]
    tracker.log_model(
        embedder,
        example,
        registered_model_name(ctx.params, registry),
        layout.pretrained(method),
        f"{arm_name} encoder pretrained on {ctx.params.data.name} (seed {ctx.seed}, {len(history)} epochs): uint8 "
        "images (N, C, S, S) as `prepare` stores them in, P1 | P2 | P3 side by side out (columns: the metadata's "
        "gsimclr_taps). `gsimclr embed` runs it on a folder of images.",
        metadata={"gsimclr_taps": embedder.columns, "gsimclr_image_size": ctx.params.data.image_size},
    )
    finish(ctx, STAGE, tracker.run_id, method, trained=[ctx.layout.pretrain_training(method)])
