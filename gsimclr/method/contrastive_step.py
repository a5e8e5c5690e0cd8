"""One SimCLR / G-SimCLR training step, top to bottom: a batch of image indices, two augmented views of each
image, one forward pass of the network, NT-Xent (Chen et al. 2020, Algorithm 1).

SimCLR and G-SimCLR share this step: G-SimCLR (Chakraborty et al. 2020, Sec. III-C) differs only in which
indices form a batch (`gsimclr.method.samplers.GuidedBatchSampler`), and optionally in how same-pseudo-label
pairs enter the loss (`false_negatives`, an extension; the paper keeps them as negatives). Data-parallel
training plugs in through `shards` (`gsimclr.training.distributed.World`): each process embeds its slice of
the batch and the loss sees the gathered batch, so every process computes the loss of the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Protocol

import numpy as np
import torch
from torch import nn

from gsimclr.method.losses import LABELLED_LOSSES, FalseNegatives, nt_xent

Precision = Literal["fp32", "bf16"]


class Shards(Protocol):
    """How a global batch is split across data-parallel processes and their embeddings gathered again."""

    def shard(self, batch: np.ndarray) -> tuple[np.ndarray, Any]: ...

    def gather(self, z: torch.Tensor, sizes: Any) -> torch.Tensor: ...


class OneProcess:
    """The world of a single process: the whole batch is its shard, and gathering is the identity."""

    def shard(self, batch: np.ndarray) -> tuple[np.ndarray, None]:
        return batch, None

    def gather(self, z: torch.Tensor, sizes: None) -> torch.Tensor:
        return z


@dataclass
class ContrastiveStep:
    """Batch indices -> `{"loss": NT-Xent}` of two augmented views of every image in the batch.

    Example (one guided batch of a 64-image dataset with 8 pseudo labels):
        >>> from gsimclr.method.augment import ViewAugment
        >>> from gsimclr.method.samplers import GuidedBatchSampler
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16))
        >>> images = torch.rand(64, 3, 8, 8)
        >>> step = ContrastiveStep(net, ViewAugment(size=8), lambda idx: images[idx], temperature=0.5)
        >>> batch = GuidedBatchSampler(np.arange(64) % 8, batch_size=8, seed=0).batches(epoch=1)[0]
        >>> step(batch)["loss"].shape
        torch.Size([])
    """

    model: nn.Module
    """Image batch -> projections (backbone + projection head)."""
    augment: Callable[[torch.Tensor], torch.Tensor]
    """One random view of every image of a batch (called twice per step: the two views)."""
    images: Callable[[np.ndarray], torch.Tensor]
    """Indices -> float images, whole as stored (the views are cropped from them)."""
    temperature: float
    false_negatives: FalseNegatives = "keep"
    tau_plus: float = 0.0
    """Class prior of the debiased loss (`false_negatives: debiased` only)."""
    pseudo_labels: Optional[Callable[[], Optional[np.ndarray]]] = None
    """Every image's current pseudo label, read by the `cancel` and `attract` losses (None during guidance's
    warm-up: the step is then SimCLR's)."""
    suspects: Optional[Callable[[torch.Tensor, torch.Tensor, np.ndarray], Optional[torch.Tensor]]] = None
    """(z1, z2, batch indices) -> the batch's suspected false negatives (N, N), read by `cancel` and `attract` in place
    of pseudo labels (`gsimclr.method.neighbours.NeighbourDetector`; None during its warm-up)."""
    precision: Precision = "fp32"
    """`bf16`: the forward pass under bfloat16 autocast; the loss is computed in fp32 either way."""
    shards: Shards = field(default_factory=OneProcess)

    def __call__(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        local, sizes = self.shards.shard(batch)
        x = self.images(local)
        device_type = x.device.type
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            z1, z2 = self.model(torch.cat([self.augment(x), self.augment(x)])).float().chunk(2)
        z1, z2 = self.shards.gather(z1, sizes), self.shards.gather(z2, sizes)
        labels = self.batch_pseudo_labels(batch)
        suspects = self.suspects(z1, z2, batch) if self.suspects is not None else None
        waiting = self.false_negatives in LABELLED_LOSSES and labels is None and suspects is None
        loss = nt_xent(
            z1,
            z2,
            self.temperature,
            labels,
            "keep" if waiting else self.false_negatives,  # nothing to act on yet: plain NT-Xent
            self.tau_plus,
            suspects,
        )
        return {"loss": loss}

    def batch_pseudo_labels(self, batch: np.ndarray) -> Optional[torch.Tensor]:
        """The whole batch's pseudo labels where the loss reads them (`cancel`, `attract`), else None."""
        if self.false_negatives not in LABELLED_LOSSES or self.pseudo_labels is None:
            return None
        current = self.pseudo_labels()
        return None if current is None else torch.as_tensor(current[batch])
