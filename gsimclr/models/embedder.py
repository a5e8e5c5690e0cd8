"""The pretrained encoder as a user runs it: images as `prepare` stores them in, the paper's P1 | P2 | P3 out.

What is logged to MLflow, registered, and run by `gsimclr embed`. The evaluation's preprocessing is part of the
module -- the central `image_size` crop of the stored images, scaled to [0, 1] (`DeviceImages`, `to_float`) -- so
a user feeds the uint8 images and never re-specifies it. MLflow's PyTorch flavour (and `mlflow.pyfunc`'s
`predict`) returns one tensor per batch, so the three taps come side by side in one row per image; which columns
hold which tap is `tap_columns`, logged as the model's metadata.
"""

from __future__ import annotations

import torch
from torch import nn

from gsimclr.method.augment import center_crop
from gsimclr.models.heads import TAPS, SimCLRNet


def tap_widths(net: SimCLRNet) -> dict[str, int]:
    """The width of each tap: P1 and P2 are the projection head's last two hidden layers, P3 the backbone."""
    linears = [module for module in net.head.layers if isinstance(module, nn.Linear)]
    return {"P1": linears[-2].out_features, "P2": linears[-3].out_features, "P3": linears[0].in_features}


def tap_columns(widths: dict[str, int]) -> dict[str, list[int]]:
    """[first, end) column of each tap in the embedder's output, in `TAPS` order."""
    columns, start = {}, 0
    for tap in TAPS:
        columns[tap] = [start, start + widths[tap]]
        start += widths[tap]
    return columns


class Embedder(nn.Module):
    """uint8 images (N, C, S, S) as `prepare` stores them -> float32 (N, |P1| + |P2| + |P3|): P1, P2, P3 of their
    central `image_size` crop, in eval mode (the representations the linear probes of the paper's Table II read).

    >>> from gsimclr.models.backbones import build_backbone
    >>> net = SimCLRNet(build_backbone("cifar_resnet", 1, blocks_per_stage=1), [32, 16, 8])
    >>> embedder = Embedder(net, image_size=8).eval()
    >>> embedder(torch.zeros(2, 1, 10, 10, dtype=torch.uint8)).shape, embedder.columns
    (torch.Size([2, 304]), {'P1': [0, 16], 'P2': [16, 48], 'P3': [48, 304]})
    """

    def __init__(self, net: SimCLRNet, image_size: int) -> None:
        super().__init__()
        self.net = net
        self.image_size = image_size
        self.columns = tap_columns(tap_widths(net))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = center_crop(images, self.image_size).float() / 255.0
        taps = self.net.representations(x)
        return torch.cat([taps[tap] for tap in TAPS], dim=1)
