"""The SimCLR projection head and the P1/P2/P3 representation taps of the paper's Table II."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gsimclr.models.backbones import feature_dim

TAPS = ("P1", "P2", "P3")


class ProjectionHead(nn.Module):
    """MLP `in_dim -> dims[0] -> ... -> dims[-1]` with ReLU between layers (paper: 256-128-50), and
    optionally BatchNorm before each ReLU (SimCLR's code)."""

    def __init__(self, in_dim: int, dims: Sequence[int], batchnorm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for i, out in enumerate(dims):
            layers.append(nn.Linear(width, out))
            if i < len(dims) - 1:
                if batchnorm:
                    layers.append(nn.BatchNorm1d(out))
                layers.append(nn.ReLU(inplace=True))
            width = out
        self.layers = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)

    def taps(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """P3: backbone output; P2: head minus its last two layers; P1: head minus its last layer."""
        out = {"P3": h}
        n_linear = sum(isinstance(m, nn.Linear) for m in self.layers)
        seen = 0
        for module in self.layers:
            h = module(h)
            if isinstance(module, nn.ReLU):
                seen += 1
                if seen == n_linear - 2:
                    out["P2"] = h
                elif seen == n_linear - 1:
                    out["P1"] = h
        return out


class SimCLRNet(nn.Module):
    """Backbone + projection head (Chen et al. 2020, Fig. 2: f(.) then g(.)); `forward` gives the
    projections the contrastive loss sees, `representations` the P1/P2/P3 taps a probe reads.

    Args:
        backbone: maps images to (B, `backbone.out_dim`) features.
        head_dims: widths of the projection head's linear layers (the paper: 256, 128, 50).
        head_batchnorm: BatchNorm before each hidden ReLU of the head (SimCLR's code).

    >>> from gsimclr.models.backbones import build_backbone
    >>> net = SimCLRNet(build_backbone("cifar_resnet", 1, blocks_per_stage=1), [32, 16, 8])
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 8])
    """

    def __init__(self, backbone: nn.Module, head_dims: Sequence[int], head_batchnorm: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = ProjectionHead(feature_dim(backbone), head_dims, head_batchnorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def representations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """P1, P2 and P3 of every image (the paper's Table II taps)."""
        return self.head.taps(self.backbone(x))
