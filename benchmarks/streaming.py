"""Streaming batches from the prepared memory map against holding the split in memory, in one run.

1. Throughput: pretraining steps (gather by index, two augmented views, forward, NT-Xent, backward,
   SGD) fed from `StreamedImages` (the prepared memory map, batches read ahead by a background thread)
   vs `ResidentImages` (the same split copied into memory): the ratio the issue's target (<= 1.05x) is about.
2. Memory: the same pretraining (`--memory-steps` steps, then the kNN monitor's pass over every image) in a
   child process: on a small dataset (the baseline: runtime, model, activations), then on the whole
   generated dataset streamed and resident, both under a memory cap of baseline + a quarter of the
   decoded dataset (a cgroup-v1 memory limit; needs root, else the runs go uncapped and say so).
   Prints each run's peak RSS (and its unevictable anonymous part), the cgroup's peak and how it ended.
Prints the machine first. Not a test: it never fails on speed or memory.

    python -m benchmarks.streaming [--images 50000] [--size 64] [--batch-size 64] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from benchmarks.machine import describe
from gsimclr.data.device_images import DeviceImages, ResidentImages, StreamedImages
from gsimclr.data.loaders import decode_dataset
from gsimclr.data.prepared import read_prepared, write_prepared
from gsimclr.data.splits import to_float
from gsimclr.method.augment import ViewAugment
from gsimclr.method.losses import nt_xent
from gsimclr.models import build
from gsimclr.settings.config import DataConfig, ModelConfig
from gsimclr.training.engine import map_batches

MODEL = ModelConfig(backbone="resnet18", cifar_stem=False, head_dims=[512, 512, 128], head_batchnorm=True)
CGROUP = Path("/sys/fs/cgroup/memory")


def write_folder(root: Path, images: int, size: int) -> None:
    """`images` generated PNGs in 10 classes (train), 10 per class (test): smooth random colour fields
    (8x8 noise upsampled), which compress well, so 50,000 of them take little disk."""
    rng = np.random.default_rng(0)
    for split, per_class in (("train", images // 10), ("test", 10)):
        for c in range(10):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
                coarse.resize((size, size), Image.Resampling.BILINEAR).save(folder / f"{i}.png")


def memory_status() -> dict[str, int]:
    """This process's resident memory in KiB: peak (VmHWM), anonymous (cannot be evicted) and file-backed."""
    fields = dict(re.findall(r"^(\w+):\s+(\d+) kB$", Path("/proc/self/status").read_text(), re.MULTILINE))
    return {key: int(fields[key]) for key in ("VmHWM", "RssAnon", "RssFile")}


def pretrain_steps(images: DeviceImages, batch_size: int, steps: int, on_step=None) -> float:
    """`steps` pretraining steps after one warm-up, batches read ahead; seconds per step."""
    torch.manual_seed(0)
    net = build.simclr_net(MODEL, images.shape[1]).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    augment = ViewAugment(crop_scale=(0.2, 1.0))
    order = np.random.default_rng(0).permutation(len(images))
    batches = [order[(i * batch_size) % len(order) :][:batch_size] for i in range(steps + 1)]
    images.read_ahead(batches)
    start = 0.0
    for step, batch in enumerate(batches):
        if step == 1:
            start = time.perf_counter()
        x = to_float(images[batch])
        z1, z2 = net(torch.cat([augment(x), augment(x)])).chunk(2)
        loss = nt_xent(z1, z2, 0.2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step()
    return (time.perf_counter() - start) / steps


def child(folder: Path, mode: str, batch_size: int, steps: int) -> None:
    """One capped run: pretraining steps, then features of every image (the kNN monitor's pass)."""
    data = read_prepared(folder)
    cpu = torch.device("cpu")
    images: DeviceImages = (
        StreamedImages(data.train_x, cpu) if mode == "streamed" else ResidentImages(data.train_x.clone(), cpu)
    )
    peak_anon = 0

    def sample() -> None:
        nonlocal peak_anon
        peak_anon = max(peak_anon, memory_status()["RssAnon"])

    start = time.perf_counter()
    pretrain_steps(images, batch_size, steps, sample)
    net = build.simclr_net(MODEL, images.shape[1]).eval()

    def features(idx: np.ndarray) -> torch.Tensor:
        out = net.backbone(to_float(images[idx]))
        sample()
        return out

    map_batches(features, len(images), 256)
    status = memory_status()
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_anon_kib": peak_anon, **status}))


def capped_run(folder: Path, mode: str, args: argparse.Namespace, cap: Optional[int]) -> dict:
    """Run `child` in a fresh process, inside a memory cgroup limited to `cap` bytes when given."""
    group = CGROUP / f"gsimclr-bench-{os.getpid()}-{mode}"
    command = [sys.executable, "-m", "benchmarks.streaming", "--child", str(folder), "--mode", mode]
    command += ["--batch-size", str(args.batch_size), "--memory-steps", str(args.memory_steps)]
    joined = None
    if cap is not None:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(cap))
        joined = lambda: (group / "cgroup.procs").write_text(str(os.getpid()))  # noqa: E731
    try:
        done = subprocess.run(command, capture_output=True, text=True, preexec_fn=joined, check=False)
        result = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {}
        result["exit"] = done.returncode
        if cap is not None:
            result["cgroup_peak_kib"] = int((group / "memory.max_usage_in_bytes").read_text()) // 1024
        return result
    finally:
        if cap is not None:
            group.rmdir()


def report(name: str, result: dict) -> str:
    if result["exit"] != 0:
        how = "killed by the memory cap (OOM)" if result["exit"] in (-9, 137) else f"exit {result['exit']}"
        return f"  {name}: {how}"
    cgroup = f", cgroup peak {result['cgroup_peak_kib'] / 1024:.0f} MiB" if "cgroup_peak_kib" in result else ""
    return (
        f"  {name}: completed in {result['seconds']:.0f} s; peak RSS {result['VmHWM'] / 1024:.0f} MiB "
        f"(anonymous {result['peak_anon_kib'] / 1024:.0f} MiB){cgroup}"
    )


def can_cap() -> bool:
    return CGROUP.is_dir() and os.access(CGROUP, os.W_OK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per throughput measurement")
    parser.add_argument("--memory-steps", type=int, default=20, help="pretraining steps of each capped run")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("streamed", "resident"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.mode, args.batch_size, args.memory_steps)
        return
    print(describe(torch.device("cpu")))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = {}
        for name, count in (("small", 2_000), ("large", args.images)):
            write_folder(root / name, count, args.size)
            data = decode_dataset(DataConfig(name="imagefolder", root=str(root / name), image_size=args.size))
            write_prepared(data, root / f"prepared-{name}", None)
            folders[name] = root / f"prepared-{name}"
        large = read_prepared(folders["large"]).train_x
        decoded = large.numel() * large.element_size()
        print(
            f"{len(large)} training images at {args.size} px: {decoded / 2**20:.0f} MiB decoded; "
            f"ResNet-18, batch {args.batch_size}\n"
        )

        cpu, steps = torch.device("cpu"), (args.batch_size, args.steps)
        resident = ResidentImages(large.clone(), cpu)
        streamed = StreamedImages(large, cpu)
        rounds = [(pretrain_steps(resident, *steps), pretrain_steps(streamed, *steps)) for _ in range(3)]
        memory_s, stream_s = (min(times) for times in zip(*rounds, strict=True))  # alternated: drift hits both
        print(
            f"pretraining step: in memory {memory_s:.3f} s, streamed from the memory map {stream_s:.3f} s: "
            f"ratio {stream_s / memory_s:.3f}x (target <= 1.05x)\n"
        )
        del resident, streamed, large

        baseline = capped_run(folders["small"], "streamed", args, None)
        print(f"memory ({args.memory_steps} pretraining steps + features of every image):")
        print(report("baseline, 2000 images, uncapped", baseline))
        cap = None
        if baseline["exit"] == 0 and can_cap():
            cap = baseline["VmHWM"] * 1024 + decoded // 4
            print(f"  cap: {cap / 2**20:.0f} MiB = baseline peak + a quarter of the decoded dataset")
        else:
            print("  no memory cap (needs a writable cgroup-v1 memory controller, i.e. root): runs uncapped")
        for mode in ("streamed", "resident"):
            print(report(f"{mode}, {args.images} images", capped_run(folders["large"], mode, args, cap)))


if __name__ == "__main__":
    main()
