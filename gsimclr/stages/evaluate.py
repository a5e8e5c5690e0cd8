"""Stage 4: linear probes at P1/P2/P3, fine-tuning on 10% of the labels, the supervised baseline, and the
controls that say whether pretraining learned anything at all.

`--method` picks what is evaluated:

- `simclr`, `gsimclr`: a pretrained network. The linear probe (`gsimclr.evaluation.probe`) on its frozen P1, P2 and
  P3, then fine-tuning of its backbone on a class-stratified `finetune_fraction` of the fit split.
- `random_init`: the same network untrained (initialised from the run's seed), through the same probes
  and the same fine-tune, which for an untrained network is training from scratch on exactly the
  labelled images the fine-tune uses: the control of the paper's Table III.
- `pixels`: the same linear probe on raw pixels.
- `supervised`: the backbone trained from scratch on every label of the fit split.

A representation that does not beat `random_init` under the same probe has learned nothing worth
comparing. Every model and hyper-parameter (the probe's C, the early-stopping epoch) is selected on the
validation split carved from the training data (the paper's official code selected on the test set);
the test split is touched once, by the selected model.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gsimclr.data.device_images import DeviceImages, reading_ahead
from gsimclr.data.splits import ImageSplits, LabelSplit, split_indices, stratified_subset, to_float
from gsimclr.evaluation.probe import linear_probe
from gsimclr.method.samplers import epoch_rng, shuffled_batches
from gsimclr.models import build
from gsimclr.models.backbones import feature_dim
from gsimclr.models.heads import TAPS, SimCLRNet
from gsimclr.outputs.metrics import EvaluationMetrics, RowScores, epoch_curves
from gsimclr.pipeline.tracking import StageRun, stage_run
from gsimclr.settings.config import ClassifierConfig
from gsimclr.settings.names import PIXELS, Classifier, EvalMethod, Method, Stage, is_pretrained
from gsimclr.stages.context import StageContext, finish, log_training_data
from gsimclr.system.storage import load_upstream, write_json
from gsimclr.training.engine import LoopConfig, Training, fit, map_batches, resumable_run_id
from gsimclr.training.optim import warmup_cosine

STAGE: Stage = "evaluate"
"""The representation name of the raw-pixel probe (`linear_pixels_*` metrics)."""


def trained_classifiers(method: EvalMethod) -> tuple[Classifier, ...]:
    """The classifiers `evaluate` trains end to end (with resume checkpoints) for a method; each name
    is also its section of `params.evaluate`."""
    if method == "supervised":
        return ("supervised",)
    return () if method == PIXELS else ("finetune",)


def classifier_loop(
    ctx: StageContext, data: ImageSplits, method: EvalMethod, name: Classifier, cfg: ClassifierConfig
) -> LoopConfig:
    """Epochs, early stopping on validation accuracy, checkpoint and identity of one trained classifier."""
    files = ctx.layout.classifier_training(method, name)
    inputs = [ctx.layout.pretrained(method)] if is_pretrained(method) else []
    return ctx.training_loop(
        f"evaluate_{method}_{name}",
        cfg.epochs,
        files,
        ctx.config_hash(data, inputs=inputs) + f"evaluate_{method}_{name}",
        monitor="val_acc",
        mode="max",
        patience=cfg.patience,
    )


def class_accuracies(predictions: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall of every class (what a long-tailed training split hurts first)."""
    hits = np.bincount(labels, weights=(predictions == labels), minlength=n_classes)
    return hits / np.maximum(np.bincount(labels, minlength=n_classes), 1)


class Evaluation:
    """The data, split and tracking run every classifier of one `evaluate` call shares, and its metrics."""

    def __init__(
        self, ctx: StageContext, data: ImageSplits, split: LabelSplit, tracker: StageRun, method: EvalMethod
    ) -> None:
        self.ctx, self.data, self.split, self.tracker, self.method = ctx, data, split, tracker, method
        self.train_x, self.test_x = ctx.on_device(data.train_x), ctx.on_device(data.test_x)
        self.rows: dict[str, RowScores] = {}

    def record_test(self, name: str, predictions: np.ndarray, val_acc: float, **selection: Any) -> None:
        """Test accuracy, balanced and per-class accuracy of a row's test predictions, with the validation
        accuracy and the choice (`c`, or `best_epoch` and `labelled_images`) that selected its model."""
        test_y = self.data.test_y.numpy()
        per_class = class_accuracies(predictions, test_y, self.data.num_classes)
        self.rows[name] = RowScores(
            test_acc=float((predictions == test_y).mean()),
            test_balanced_acc=float(per_class.mean()),
            test_acc_by_class=tuple(float(acc) for acc in per_class),
            val_acc=val_acc,
            **selection,
        )

    def probe(self, name: str, train_features: torch.Tensor, test_features: torch.Tensor) -> None:
        """The linear probe on frozen features of every training image and every test image."""
        x, y = train_features.cpu().numpy(), self.data.train_y.numpy()
        cfg = self.ctx.params.evaluate.linear
        result = linear_probe(
            x[self.split.fit],
            y[self.split.fit],
            x[self.split.val],
            y[self.split.val],
            test_features.cpu().numpy(),
            list(cfg.c_grid),
            cfg.max_iter,
        )
        for i, (c, acc) in enumerate(result.val_acc_by_c.items()):
            self.tracker.log_metrics({f"{name}/sweep/val_acc": acc, f"{name}/sweep/C": c}, step=i)
        self.record_test(name, result.test_predictions, result.val_acc, c=result.c)

    def train(
        self, name: Classifier, backbone: nn.Module, pretrained: bool, cfg: ClassifierConfig, indices: np.ndarray
    ) -> None:
        """Backbone + linear classifier trained end to end on `indices` with crop/flip augmentation,
        selected on the validation split; a pretrained backbone learns at a lower rate."""
        ctx, n_classes = self.ctx, self.data.num_classes
        head = nn.Linear(feature_dim(backbone), n_classes)
        model = nn.Sequential(backbone, head).to(ctx.device)
        backbone_lr = cfg.lr * (cfg.backbone_lr_scale if pretrained else 1.0)
        optimizer = torch.optim.SGD(
            [{"params": backbone.parameters(), "lr": backbone_lr}, {"params": head.parameters(), "lr": cfg.lr}],
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
        scheduler = warmup_cosine(optimizer, 0, cfg.epochs * math.ceil(len(indices) / cfg.batch_size))
        augment = build.classifier_augment(cfg, ctx.params.data.image_size)
        train_y = self.data.train_y.to(ctx.device)

        def predict(images: DeviceImages, indices: np.ndarray) -> np.ndarray:
            model.eval()
            return map_batches(
                lambda chunk: model(to_float(images[indices[chunk]])).argmax(1).cpu(), len(indices), 512
            ).numpy()

        def step(idx: np.ndarray) -> dict[str, torch.Tensor]:
            return {"loss": F.cross_entropy(model(augment(to_float(self.train_x.stored(idx)))), train_y[idx])}

        def validate(epoch: int) -> dict[str, float]:
            return {
                "val_acc": float(
                    (predict(self.train_x, self.split.val) == self.data.train_y.numpy()[self.split.val]).mean()
                )
            }

        result = fit(
            Training(
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                step=step,
                validate=validate,
                batches=reading_ahead(
                    self.train_x, lambda epoch: shuffled_batches(indices, cfg.batch_size, epoch_rng(ctx.seed, epoch))
                ),
                on_epoch=lambda e, m: self.tracker.log_metrics(epoch_curves(m, f"{name}/"), step=e),
                run_id=self.tracker.run_id,
            ),
            classifier_loop(ctx, self.data, self.method, name, cfg),
        )
        # Every label the row used: its training images and the validation images that selected its epoch.
        self.record_test(
            name,
            predict(self.test_x, np.arange(len(self.test_x))),
            result.best["val_acc"],
            best_epoch=result.best_epoch,
            labelled_images=len(indices) + len(self.split.val),
        )

    def features(self, net: SimCLRNet) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """P1/P2/P3 of every training and test image, in eval mode."""
        net.eval()
        train = map_batches(
            lambda i: net.representations(to_float(self.train_x[i])), len(self.train_x), 512, "features"
        )
        test = map_batches(lambda i: net.representations(to_float(self.test_x[i])), len(self.test_x), 512, "features")
        return train, test


def load_pretrained(ctx: StageContext, method: Method, channels: int) -> tuple[SimCLRNet, dict[str, Any]]:
    """The `pretrain` stage's network of this seed and the params it was trained with; a missing or mismatched
    file is a one-line error."""
    trained_with: dict[str, Any] = {}

    def network(state: dict) -> SimCLRNet:
        trained_with.update(state.get("config") or {})
        return build.simclr_net(ctx.params.model, channels)

    net = load_upstream(
        ctx.layout.pretrained(method),
        "pretrained model",
        f"gsimclr pretrain --method {method}",
        network,
        "was trained with another model config",
    )
    return net.to(ctx.device), trained_with


def is_oracle(trained_with: dict[str, Any]) -> bool:
    """Whether a network was pretrained as the oracle bound (`guidance.labels: oracle`, read from its checkpoint:
    `evaluate` declares no guidance params, and need not)."""
    return (trained_with.get("guidance") or {}).get("labels") == "oracle"


def _state_fingerprint(module: nn.Module) -> list[torch.Tensor]:
    return [tensor.detach().clone() for tensor in module.state_dict().values()]


def evaluate_network(run: Evaluation, net: SimCLRNet, pretrained: bool) -> None:
    """Linear probes on the frozen P1/P2/P3 of `net`, then its backbone fine-tuned on the labelled fraction."""
    params, seed = run.ctx.params, run.ctx.seed
    before = _state_fingerprint(net)
    train_features, test_features = run.features(net)
    for tap in TAPS:
        run.probe(f"linear_{tap}", train_features[tap], test_features[tap])
    if not all(torch.equal(a, b) for a, b in zip(before, _state_fingerprint(net), strict=True)):
        raise RuntimeError("frozen backbone changed during linear evaluation")
    labelled = stratified_subset(run.split.fit, run.data.train_y, params.evaluate.finetune_fraction, seed)
    run.train("finetune", copy.deepcopy(net.backbone), pretrained, params.evaluate.finetune, labelled)


def evaluate(ctx: StageContext, method: EvalMethod) -> EvaluationMetrics:
    """Evaluate one method (see the module docstring) on this seed's split; returns and writes the
    scores of every row it evaluated (`gsimclr.outputs.metrics.EvaluationMetrics`)."""
    params = ctx.params
    data = ctx.dataset()
    split = split_indices(len(data.train_y), params.data.val_fraction, ctx.seed, labels=data.train_y)
    pretrained, trained_with = load_pretrained(ctx, method, data.channels) if is_pretrained(method) else (None, {})
    resumed = [
        resumable_run_id(classifier_loop(ctx, data, method, name, getattr(params.evaluate, name)))
        for name in trained_classifiers(method)
    ]
    resume = next((r for r in resumed if r), None)
    with stage_run(STAGE, params, ctx.config, method, ctx.seed, resume, oracle=is_oracle(trained_with)) as tracker:
        log_training_data(tracker, ctx, data)
        run = Evaluation(ctx, data, split, tracker, method)
        if method == "supervised":
            run.train(
                "supervised", build.backbone(params.model, data.channels), False, params.evaluate.supervised, split.fit
            )
        elif method == PIXELS:
            run.probe(f"linear_{PIXELS}", run.train_x[:].flatten(1).float(), run.test_x[:].flatten(1).float())
        elif method == "random_init":
            evaluate_network(run, build.simclr_net(params.model, data.channels).to(ctx.device), pretrained=False)
        elif pretrained is not None:
            evaluate_network(run, pretrained, pretrained=True)
        scores = EvaluationMetrics(run.rows)
        tracker.log_metrics(scores.to_json())
        scores.write(ctx.layout.metrics("evaluate", method))
        finish(
            ctx,
            STAGE,
            tracker.run_id,
            method,
            trained=[ctx.layout.classifier_training(method, name) for name in trained_classifiers(method)],
        )
    return scores


def screen(ctx: StageContext, method: EvalMethod) -> dict[str, float]:
    """Screening a pretrained candidate on the validation split alone: the linear probe at P1/P2/P3 (C chosen on
    the validation split, as `evaluate` does) and nothing else -- no fine-tune, the test split never read -- so a
    study can choose its variants for the full runs without spending the test set; `random_init` screens the
    untrained network, the control under the same probe. Writes
    `metrics/seed<N>/screen_<method>.json`; the kNN monitor's curve is already in the pretraining run."""
    params = ctx.params
    data = ctx.dataset()
    split = split_indices(len(data.train_y), params.data.val_fraction, ctx.seed, labels=data.train_y)
    untrained = build.simclr_net(params.model, data.channels).to(ctx.device)  # the control, from the run's seed
    net = (load_pretrained(ctx, method, data.channels)[0] if is_pretrained(method) else untrained).eval()
    images = ctx.on_device(data.train_x)
    features = map_batches(lambda i: net.representations(to_float(images[i])), len(images), 512, "features")
    y, cfg = data.train_y.numpy(), params.evaluate.linear
    scores: dict[str, float] = {}
    for tap in TAPS:
        x = features[tap].cpu().numpy()
        result = linear_probe(x[split.fit], y[split.fit], x[split.val], y[split.val], None, cfg.c_grid, cfg.max_iter)
        scores |= {f"linear_{tap}/val_acc": result.val_acc, f"linear_{tap}/C": result.c}
    write_json(ctx.layout.metrics("screen", method), scores)
    return scores
