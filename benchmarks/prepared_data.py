"""The prepared (memory-mapped) dataset against decoding and against data held in memory, in one run.

1. Time to data: decoding an ImageFolder of generated JPEGs at the training size (what every stage did
   before the `prepare` stage) vs opening the prepared arrays (what every stage does now).
2. The data path of a pretraining epoch: gather a batch of uint8 images by index and convert it to float,
   from the memory-mapped arrays vs from the same arrays in memory. Pages are warm after the first epoch,
   as in training; the first epoch is measured separately (cold page cache is not forced: that needs root).
3. Whole pretraining steps (gather, two augmented views, forward, NT-Xent, backward, SGD) of the paper's
   CIFAR ResNet fed from each source: the ratio the issue's target (<= 1.05x) is about.
Prints the machine and the ratios. Not a test: it never fails on speed.

    python -m benchmarks.prepared_data [--images 5000] [--size 64] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.machine import describe, peak_memory
from gsimclr.data.loaders import decode_dataset
from gsimclr.data.prepared import read_prepared, write_prepared
from gsimclr.data.splits import to_float
from gsimclr.method.augment import ViewAugment
from gsimclr.method.losses import nt_xent
from gsimclr.models import build
from gsimclr.settings.config import DataConfig, ModelConfig


def write_folder(root: Path, images: int, size: int) -> None:
    """`images` random JPEGs in 5 classes (train) and 50 per class (test), at 1.5x the training size."""
    rng = np.random.default_rng(0)
    side = int(size * 1.5)
    for split, per_class in (("train", images // 5), ("test", 50)):
        for c in range(5):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


def epoch_seconds(images: torch.Tensor, batch_size: int, seed: int = 0) -> float:
    """One epoch of random batches: gather by index + uint8 -> float (the data path of a pretraining step)."""
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(images)))
    start = time.perf_counter()
    for i in range(0, len(order), batch_size):
        to_float(images[order[i : i + batch_size]]).sum()
    return time.perf_counter() - start


def steps_seconds(images: torch.Tensor, batch_size: int, steps: int) -> float:
    """`steps` pretraining steps (after one warm-up step) with batches gathered from `images`."""
    torch.manual_seed(0)
    net = build.simclr_net(ModelConfig(backbone="cifar_resnet", blocks_per_stage=1), images.shape[1]).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    augment = ViewAugment(crop_scale=(0.2, 1.0))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(images)))
    start = 0.0
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()
        x = to_float(images[order[(step * batch_size) % len(order) :][:batch_size]])
        z1, z2 = net(torch.cat([augment(x), augment(x)])).chunk(2)
        loss = nt_xent(z1, z2, 0.5)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    print(describe(torch.device("cpu")))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_folder(root / "data", args.images, args.size)
        cfg = DataConfig(name="imagefolder", root=str(root / "data"), image_size=args.size)
        start = time.perf_counter()
        decoded = decode_dataset(cfg)
        decode_s = time.perf_counter() - start
        write_prepared(decoded, root / "prepared", None)
        start = time.perf_counter()
        mapped = read_prepared(root / "prepared")
        open_s = time.perf_counter() - start
        print(f"{len(decoded.train_x)} training images at {args.size} px, batch {args.batch_size}\n")
        print(
            f"time to data: decode {decode_s:.2f} s, open prepared {open_s:.3f} s (digest check included): "
            f"{decode_s / open_s:.0f}x faster"
        )
        in_memory = decoded.train_x.clone()
        first = epoch_seconds(mapped.train_x, args.batch_size)
        mapped_s = min(epoch_seconds(mapped.train_x, args.batch_size, seed) for seed in range(1, 4))
        memory_s = min(epoch_seconds(in_memory, args.batch_size, seed) for seed in range(1, 4))
        print(
            f"epoch data path: in memory {memory_s:.3f} s, memory-mapped {mapped_s:.3f} s "
            f"(first epoch {first:.3f} s): ratio {mapped_s / memory_s:.2f}x"
        )
        memory_step = min(steps_seconds(in_memory, args.batch_size, args.steps) for _ in range(2))
        mapped_step = min(steps_seconds(mapped.train_x, args.batch_size, args.steps) for _ in range(2))
        print(
            f"pretraining step (cifar_resnet): in memory {memory_step:.3f} s, memory-mapped {mapped_step:.3f} s: "
            f"ratio {mapped_step / memory_step:.3f}x (target <= 1.05x)"
        )
    print(peak_memory(torch.device("cpu")))


if __name__ == "__main__":
    main()
