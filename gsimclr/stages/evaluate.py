"""Stage 4: linear probes at P1/P2/P3, fine-tuning on 10% of the labels, and the supervised baseline.

Every classifier is selected on the validation split carved from the training data (the paper's
official code selected on the test set); the test split is touched once, by the selected model.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gsimclr.config import ProbeConfig
from gsimclr.data import ImageSplits, LabelSplit, load_dataset, split_indices, stratified_subset, to_float
from gsimclr.engine import LoopConfig, Training, fit, map_batches, resumable_run_id
from gsimclr.errors import MissingUpstreamError, UserError
from gsimclr.models.backbones import build_backbone
from gsimclr.models.heads import TAPS, SimCLRNet
from gsimclr.samplers import epoch_rng, shuffled_batches
from gsimclr.stages.context import StageContext, finish
from gsimclr.storage import load_torch, write_json
from gsimclr.tracking import StageRun, stage_run

STAGE = "evaluate"
Fetch = Callable[[np.ndarray], torch.Tensor]


def predict(model: nn.Module, fetch: Fetch, indices: np.ndarray) -> torch.Tensor:
    model.eval()
    return map_batches(lambda chunk: model(fetch(indices[chunk])).argmax(1).cpu(), len(indices), 512)


def accuracy(model: nn.Module, fetch: Fetch, labels: torch.Tensor, indices: np.ndarray) -> float:
    return float((predict(model, fetch, indices) == labels[indices]).float().mean())


def class_accuracies(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> np.ndarray:
    """Recall of every class (what a long-tailed training split hurts first)."""
    hits = np.bincount(labels.numpy(), weights=(predictions == labels).numpy(), minlength=n_classes)
    return hits / np.maximum(np.bincount(labels.numpy(), minlength=n_classes), 1)


def probe_loop(ctx: StageContext, method: str, name: str, cfg: ProbeConfig) -> LoopConfig:
    run_name = f"evaluate_{method}_{name}"
    return LoopConfig(
        desc=run_name, epochs=cfg.epochs, seed=ctx.seed, checkpoint=ctx.resume_path(run_name),
        checkpoint_every=ctx.params.checkpoint_every,
        config_hash=ctx.config_hash("data", "model", "pretrain", "evaluate") + run_name,
        monitor="val_acc", mode="max", patience=cfg.patience,
    )


def classifier_plan(ctx: StageContext, method: str) -> dict[str, ProbeConfig]:
    """The classifiers `evaluate` trains for a method, by name."""
    cfg = ctx.params.evaluate
    if method == "supervised":
        return {"supervised": cfg.supervised}
    return {**{f"linear_{tap}": cfg.linear for tap in TAPS}, "finetune": cfg.finetune}


class ClassifierTrainer:
    """Trains one classifier (probe, fine-tune or supervised) with validation-based selection."""

    def __init__(self, ctx: StageContext, data: ImageSplits, split: LabelSplit, tracker: StageRun, method: str) -> None:
        self.ctx, self.data, self.split, self.tracker, self.method = ctx, data, split, tracker, method
        self.train_y = data.train_y.to(ctx.device)

    def __call__(self, name: str, model: nn.Module, fetch_train: Fetch, fetch_test: Fetch,
                 fit_indices: np.ndarray) -> dict[str, float]:
        cfg = classifier_plan(self.ctx, self.method)[name]
        model = model.to(self.ctx.device)

        def step(idx: np.ndarray) -> dict[str, torch.Tensor]:
            return {"loss": F.cross_entropy(model(fetch_train(idx)), self.train_y[idx])}

        loop = probe_loop(self.ctx, self.method, name, cfg)
        result = fit(
            Training(
                model=model, optimizer=torch.optim.Adam(model.parameters(), lr=cfg.lr),
                batches=lambda epoch: shuffled_batches(fit_indices, cfg.batch_size, epoch_rng(self.ctx.seed, epoch)),
                step=step,
                validate=lambda: {"val_acc": accuracy(model, fetch_train, self.data.train_y, self.split.val)},
                on_epoch=lambda e, m: self.tracker.log_metrics({f"{name}/{k}": v for k, v in m.items()}, step=e),
                run_id=self.tracker.run_id,
            ),
            loop,
        )
        predictions = predict(model, fetch_test, np.arange(len(self.data.test_y)))
        per_class = class_accuracies(predictions, self.data.test_y, self.data.num_classes)
        self.tracker.log_metrics({f"{name}/test_acc_{label}": acc for label, acc in zip(self.data.classes, per_class)})
        return {f"{name}_test_acc": float((predictions == self.data.test_y).float().mean()),
                f"{name}_test_balanced_acc": float(per_class.mean()),
                **{f"{name}_test_acc_class{c}": float(acc) for c, acc in enumerate(per_class)},
                f"{name}_val_acc": result.best["val_acc"], f"{name}_best_epoch": result.best_epoch}


def load_pretrained(ctx: StageContext, method: str, channels: int) -> SimCLRNet:
    path = ctx.layout.pretrained(method)
    if not path.exists():
        raise MissingUpstreamError(f"pretrained model not found: {path} (run `gsimclr pretrain --method {method}` first)")
    state = load_torch(path, "pretrained checkpoint")
    net = SimCLRNet(ctx.params.model, channels)
    try:
        net.load_state_dict(state["model"])
    except (KeyError, RuntimeError):
        raise UserError(f"{path} was trained with another model config (re-run `gsimclr pretrain --method {method}`)") from None
    return net.to(ctx.device).eval()


def _state_fingerprint(module: nn.Module) -> list[torch.Tensor]:
    return [tensor.detach().clone() for tensor in module.state_dict().values()]


def evaluate(ctx: StageContext, method: str) -> dict[str, float]:
    params, cfg = ctx.params, ctx.params.evaluate
    data = load_dataset(params.data)
    split = split_indices(len(data.train_y), params.data.val_fraction, ctx.seed, labels=data.train_y)
    train_x, test_x = data.train_x.to(ctx.device), data.test_x.to(ctx.device)
    plan = classifier_plan(ctx, method)
    resumed = [resumable_run_id(probe_loop(ctx, method, name, probe)) for name, probe in plan.items()]
    metrics: dict[str, float] = {}
    with stage_run(STAGE, params, method, seed=ctx.seed, resume_run_id=next((r for r in resumed if r), None)) as tracker:
        train = ClassifierTrainer(ctx, data, split, tracker, method)
        if method == "supervised":
            backbone = build_backbone(params.model, data.channels)
            model = nn.Sequential(backbone, nn.Linear(backbone.out_dim, data.num_classes))
            metrics |= train("supervised", model, lambda i: to_float(train_x[i]), lambda i: to_float(test_x[i]), split.fit)
        else:
            net = load_pretrained(ctx, method, data.channels)
            before = _state_fingerprint(net)
            train_feats = map_batches(lambda i: net.representations(to_float(train_x[i])), len(train_x), 512, "features")
            test_feats = map_batches(lambda i: net.representations(to_float(test_x[i])), len(test_x), 512, "features")
            for tap in TAPS:
                probe = nn.Linear(train_feats[tap].shape[1], data.num_classes)
                metrics |= train(f"linear_{tap}", probe, lambda i, t=tap: train_feats[t][i],
                                 lambda i, t=tap: test_feats[t][i], split.fit)
            if not all(torch.equal(a, b) for a, b in zip(before, _state_fingerprint(net))):
                raise RuntimeError("frozen backbone changed during linear evaluation")
            labelled = stratified_subset(split.fit, data.train_y, cfg.finetune_fraction, ctx.seed)
            tuned = nn.Sequential(copy.deepcopy(net.backbone), nn.Linear(net.backbone.out_dim, data.num_classes))
            metrics |= train("finetune", tuned, lambda i: to_float(train_x[i]), lambda i: to_float(test_x[i]), labelled)
            metrics["finetune_labelled_images"] = len(labelled)
        tracker.log_metrics(metrics)
        write_json(ctx.layout.metrics(STAGE, method), metrics)
        finish(ctx, STAGE, tracker.run_id, method, *(f"evaluate_{method}_{name}" for name in plan))
    return metrics
