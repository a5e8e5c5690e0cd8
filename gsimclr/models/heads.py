"""The SimCLR projection head and the P1/P2/P3 representation taps of the paper's Table II."""

from __future__ import annotations

import torch
from torch import nn

from gsimclr.config import ModelConfig
from gsimclr.models.backbones import build_backbone

TAPS = ("P1", "P2", "P3")


class ProjectionHead(nn.Module):
    """MLP `in_dim -> dims[0] -> ... -> dims[-1]` with ReLU between layers (paper: 256-128-50), and
    optionally BatchNorm before each ReLU (SimCLR's code)."""

    def __init__(self, in_dim: int, dims: list[int], batchnorm: bool = False) -> None:
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
    """Backbone + projection head; `forward` gives the projections the contrastive loss sees."""

    def __init__(self, cfg: ModelConfig, in_channels: int) -> None:
        super().__init__()
        self.backbone = build_backbone(cfg, in_channels)
        self.head = ProjectionHead(self.backbone.out_dim, list(cfg.head_dims), cfg.head_batchnorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def representations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head.taps(self.backbone(x))
