"""Pretraining throughput against the hardware limit, measured in one run on this machine.

For each backbone/resolution: the *bare* step (forward + backward + SGD step of SimCLRNet on pre-made
random tensors of both views' shape) and the *full* step of `gsimclr pretrain` (sampler, gather,
uint8 -> float, per-image augmentation of two views, forward, NT-Xent, backward, SGD + cosine step),
with the full step broken down by part. Prints images/s and the ratio full / bare (target <= 1.10
on CPU), and the cost of one kNN-monitor measurement (`pretrain.knn`: features of every training image
in eval mode + the weighted kNN vote) against one pretraining epoch of the same images (target <= 5 %
at the monitoring interval). With `--layouts`, the bare step in the channels-last layout and with bf16
autocast (where the device computes bf16 natively) against the default. Not a test: it never fails on speed.

    python -m benchmarks.pretrain_throughput [--batch-size 256] [--steps 5] [--device auto] [--layouts]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch

from benchmarks.machine import describe, peak_memory
from gsimclr.data.splits import to_float
from gsimclr.evaluation.knn import knn_accuracy
from gsimclr.method.augment import ViewAugment
from gsimclr.method.losses import nt_xent
from gsimclr.method.samplers import GuidedBatchSampler, RandomBatchSampler
from gsimclr.models import build
from gsimclr.models.heads import SimCLRNet
from gsimclr.settings.config import ModelConfig
from gsimclr.training.device import native_bf16, select_device
from gsimclr.training.engine import map_batches

CONFIGS = {
    "cifar_resnet@16 (digits quickstart)": (ModelConfig(backbone="cifar_resnet", blocks_per_stage=1), 16),
    "cifar_resnet@32": (ModelConfig(backbone="cifar_resnet", blocks_per_stage=2), 32),
    "cifar_resnet@32 1 block (cifar10-cpu)": (
        ModelConfig(backbone="cifar_resnet", blocks_per_stage=1, head_dims=[256, 256, 128], head_batchnorm=True),
        32,
    ),
    "resnet18@32 (cifar stem)": (ModelConfig(backbone="resnet18", cifar_stem=True), 32),
    "resnet18@48": (
        ModelConfig(backbone="resnet18", cifar_stem=False, head_dims=[512, 512, 128], head_batchnorm=True),
        48,
    ),
    "resnet18@64": (ModelConfig(backbone="resnet18", cifar_stem=False), 64),
}
KNN_IMAGES = {
    "cifar_resnet@16 (digits quickstart)": 1_437,
    "cifar_resnet@32": 50_000,
    "cifar_resnet@32 1 block (cifar10-cpu)": 50_000,
    "resnet18@32 (cifar stem)": 50_000,
    "resnet18@48": 1_250,
    "resnet18@64": 1_250,
}
"""Training-set size the kNN monitor is measured at: CIFAR-10 for the 32 px configs, the ImageNet subset otherwise."""
AUGMENT = ViewAugment(flip=True, crop_scale=(0.2, 1.0), color_strength=0.5, grayscale_p=0.2)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_model(cfg: ModelConfig, device: torch.device):
    torch.manual_seed(0)
    model: SimCLRNet = build.simclr_net(cfg, 3).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    return model, optimizer


def bare_step_seconds(
    cfg: ModelConfig, size: int, batch: int, steps: int, device: torch.device, bf16: bool = False, compile: bool = False
) -> float:
    net, optimizer = make_model(cfg, device)
    model = torch.compile(net) if compile else net  # compiles during the warm-up step, which is not timed
    views = torch.rand(2 * batch, 3, size, size, device=device)
    for i in range(steps + 1):  # the first step warms up kernels and allocators
        if i == 1:
            sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            z = model(views).float()
        loss = z.square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(device)
    return (time.perf_counter() - start) / steps


def full_step_seconds(
    cfg: ModelConfig, size: int, batch: int, steps: int, device: torch.device, method: str
) -> tuple[float, dict[str, float]]:
    model, optimizer = make_model(cfg, device)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps + 1)
    n = batch * (steps + 1)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, device=device)
    pseudo = np.random.default_rng(0).integers(0, batch, n)
    sampler = GuidedBatchSampler(pseudo, batch, 0) if method == "gsimclr" else RandomBatchSampler(n, batch, 0)
    augment = AUGMENT
    parts: dict[str, float] = defaultdict(float)

    def timed(name: str, fn, *args):
        sync(device)
        t = time.perf_counter()
        out = fn(*args)
        sync(device)
        parts[name] += time.perf_counter() - t
        return out

    def update(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()

    batches = timed("sampler", sampler.batches, 1)
    parts.clear()  # the sampler runs once per epoch: reported separately, not per step
    total = 0.0
    for i, idx in enumerate(batches):
        sync(device)
        start = time.perf_counter()
        x = timed("gather + to_float", lambda i: to_float(images[torch.as_tensor(i, device=device)]), idx)
        views = timed("augment (2 views)", lambda v: torch.cat([augment(v), augment(v)]), x)
        z = timed("forward", model, views)
        loss = timed("NT-Xent", lambda embeddings: nt_xent(embeddings[:batch], embeddings[batch:], 0.1), z)
        timed("backward + step", update, loss)
        sync(device)
        if i == 0:  # warm-up step
            parts.clear()
        else:
            total += time.perf_counter() - start
    return total / steps, {k: v / steps for k, v in parts.items()}


def layouts_and_precision(
    cfg: ModelConfig, size: int, batch: int, steps: int, device: torch.device, compiled: bool = False
) -> str:
    """The bare step in the default layout (fp32), channels-last (`model.channels_last`), channels-last with bf16
    autocast (`pretrain.precision`) where the device computes bf16 natively, and channels-last compiled with
    torch.compile (`pretrain.compile`, with `compiled`); ratios to the first."""
    base = bare_step_seconds(cfg.model_copy(update={"channels_last": False}), size, batch, steps, device)
    last = cfg.model_copy(update={"channels_last": True})
    parts = [
        f"contiguous fp32 {base:.3f} s",
        f"channels_last {base / bare_step_seconds(last, size, batch, steps, device):.2f}x",
    ]
    if native_bf16(device):
        parts.append(f"channels_last + bf16 {base / bare_step_seconds(last, size, batch, steps, device, True):.2f}x")
    if compiled:
        start = time.perf_counter()
        seconds = bare_step_seconds(last, size, batch, steps, device, compile=True)
        total = time.perf_counter() - start
        parts.append(f"channels_last + torch.compile {base / seconds:.2f}x (compile + {steps} steps: {total:.0f} s)")
    return "  layout/precision (speed-up of the bare step): " + ", ".join(parts)


def sampler_share(batch: int, per_image_s: float, items: int = 50_000) -> str:
    """Cost of drawing one epoch of guided batches for `items` images, against that epoch's training time."""
    sampler = GuidedBatchSampler(np.random.default_rng(0).integers(0, 64, items), batch, 0)
    start = time.perf_counter()
    sampler.batches(1)
    seconds = time.perf_counter() - start
    share = 100 * seconds / (per_image_s * items)
    return f"guided sampler, {items} images: {seconds * 1e3:.1f} ms per epoch = {share:.3f}% of the epoch"


def knn_monitor_share(
    cfg: ModelConfig, size: int, n_images: int, per_image_s: float, every: int, device: torch.device
) -> str:
    """One kNN measurement (eval-mode features of `n_images`, 90/10 memory/query split, k=20) against
    one pretraining epoch of those images at the measured full-step speed."""
    model, _ = make_model(cfg, device)
    model.eval()
    images = torch.randint(0, 256, (n_images, 3, size, size), dtype=torch.uint8, device=device)
    labels = torch.as_tensor(np.random.default_rng(0).integers(0, 10, n_images), device=device)
    memory = np.arange(n_images) % 10 != 0
    sync(device)
    start = time.perf_counter()
    features = map_batches(lambda idx: model.backbone(to_float(images[idx])), n_images, 256)
    knn_accuracy(features[memory], labels[memory], features[~memory], labels[~memory], k=20, temperature=0.1)
    sync(device)
    seconds = time.perf_counter() - start
    share = seconds / (per_image_s * n_images)
    return (
        f"  kNN monitor, {n_images} images: {seconds:.2f} s = {100 * share:.1f}% of a pretraining epoch; "
        f"every {every} epochs: {100 * share / every:.1f}% of pretraining time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--knn-every", type=int, default=5, help="monitoring interval the kNN share is amortised over")
    parser.add_argument("--layouts", action="store_true", help="also time channels-last and bf16 against the default")
    parser.add_argument("--compile", action="store_true", help="with --layouts: also time torch.compile (inductor)")
    args = parser.parse_args()
    device = select_device(args.device)
    print(describe(device))
    print(f"batch {args.batch_size} (x2 views), {args.steps} timed steps after one warm-up step\n")
    fastest_per_image = float("inf")
    for name in args.configs:
        cfg, size = CONFIGS[name]
        bare = bare_step_seconds(cfg, size, args.batch_size, args.steps, device)
        print(f"{name}: bare model step {bare:.3f} s = {args.batch_size / bare:.0f} img/s")
        for method in ("simclr", "gsimclr"):
            full, parts = full_step_seconds(cfg, size, args.batch_size, args.steps, device, method)
            fastest_per_image = min(fastest_per_image, full / args.batch_size)
            breakdown = ", ".join(f"{k} {1e3 * v:.0f} ms" for k, v in parts.items())
            print(
                f"  {method:8s} full step {full:.3f} s = {args.batch_size / full:.0f} img/s, "
                f"ratio full/bare {full / bare:.2f}  [{breakdown}]"
            )
        print(knn_monitor_share(cfg, size, KNN_IMAGES[name], full / args.batch_size, args.knn_every, device))
        if args.layouts:
            print(layouts_and_precision(cfg, size, args.batch_size, args.steps, device, args.compile))
    print("\n" + sampler_share(args.batch_size, fastest_per_image))
    print(peak_memory(device))


if __name__ == "__main__":
    main()
