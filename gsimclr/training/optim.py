"""SimCLR's optimisation recipe: parameter groups without weight decay, and linear warm-up + cosine decay.

SimCLR (Chen et al. 2020, Appendix B.1), MoCo v3 and solo-learn exempt BatchNorm parameters and biases
from weight decay, and warm the learning rate up linearly before a cosine decay; the G-SimCLR paper's
Keras code does neither. Both are switches here so the paper's settings stay available.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def parameter_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    """One group that is decayed and, unless `decay_norm_and_bias`, one of 1-d tensors (norm scales,
    biases) that is not.

    >>> groups = parameter_groups(nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2)), 1e-4, False)
    >>> [len(g["params"]) for g in groups], [g["weight_decay"] for g in groups]
    ([1, 3], [0.0001, 0.0])
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_norm_and_bias:
        return [{"params": params, "weight_decay": weight_decay}]
    decayed = [p for p in params if p.ndim > 1]
    exempt = [p for p in params if p.ndim <= 1]
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: lr rises linearly from lr/warmup_steps to lr, then follows a cosine to 0 at `total_steps`.

    With `warmup_steps=0` it is exactly `CosineAnnealingLR(T_max=total_steps)`.
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
