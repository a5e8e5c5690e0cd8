"""`gsimclr embed`'s throughput against the bare forward pass of the same network, in one run on one machine.

The network is the CIFAR-10 study's (`pipelines/cifar10-cpu.yaml`: a CIFAR ResNet, one block per stage, head
256-256-128) at 32 x 32, untrained (speed does not depend on the weights). `embed` is the whole path after decoding:
the `Embedder` (crop, scale, P1/P2/P3), batching, the progress bar and the three `.npy` files and the index
written; the bare pass is `net.representations` on float images already in [0, 1], batch by batch, results kept.
Decoding image files is reported apart (it depends on the files, not on the encoder). Not a test: it never fails on
speed; the issue's target is a ratio >= 0.8.

    python -m benchmarks.embed [--images 4096] [--batch-size 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.machine import describe
from gsimclr.embedding.encoder import Encoder
from gsimclr.embedding.images import Images
from gsimclr.embedding.run import embed
from gsimclr.models.backbones import build_backbone
from gsimclr.models.embedder import Embedder
from gsimclr.models.heads import SimCLRNet
from gsimclr.training.device import select_device


def best_of(repeats: int, work) -> float:
    """The fastest of `repeats` timings of `work()` (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = select_device("auto")
    print(describe(device))
    torch.manual_seed(0)
    net = SimCLRNet(build_backbone("cifar_resnet", 3, blocks_per_stage=1), [256, 256, 128]).to(device).eval()
    embedder = Embedder(net, image_size=32).eval()
    pixels = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8)
    images = Images(pixels, [f"image{i}.png" for i in range(args.images)])
    encoder = Encoder(embedder, 3, 32, embedder.columns, "untrained CIFAR-10 study network")
    floats = pixels.float() / 255.0

    @torch.no_grad()
    def bare() -> None:
        kept = [
            net.representations(floats[i : i + args.batch_size].to(device))
            for i in range(0, args.images, args.batch_size)
        ]
        assert len(kept) == -(-args.images // args.batch_size)

    with tempfile.TemporaryDirectory() as scratch:
        bare()  # warm-up: first-call allocations and kernel selection
        bare_s = best_of(args.repeats, bare)
        embed_s = best_of(args.repeats, lambda: embed(encoder, images, Path(scratch), args.batch_size, device))
    print(f"{args.images} images of 3x32x32, batch {args.batch_size}, best of {args.repeats}:")
    print(f"  bare forward (net.representations):   {args.images / bare_s:8.0f} images/s")
    print(f"  gsimclr embed (after decoding):        {args.images / embed_s:8.0f} images/s")
    print(f"  ratio embed / bare: {bare_s / embed_s:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
