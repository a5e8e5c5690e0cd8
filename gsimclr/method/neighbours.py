"""Label-free false-negative detection inside a batch: each image's most similar other images are suspects.

Huynh et al. 2022 ("Boosting Contrastive Self-Supervised Learning with False Negative Cancellation", WACV 2022,
Sec. 3.2) score every negative of an anchor by its similarity to a support set of views of the anchor, aggregate
the scores and take the top-k as the anchor's false negatives, to cancel from the denominator or to attract as
positives. Here the support set is the anchor's two training views (no extra views, so no extra forward passes),
the score is the mean cosine similarity of the four view pairs of two images (the projections, without gradient),
and each image's `n` best-scoring other images of its batch are its suspects. A pair that either image suspects is
a false negative for both: one symmetric mask, so each unordered pair is cancelled or attracted once and counted
once in the diagnostics.

Why neighbours rather than clusters: on a CIFAR-10 SimCLR network an image's nearest neighbour shares its class
about twice as often as two images that share a k-means cluster (`gsimclr label-quality`, docs/guidance.md), so
acting on neighbours should spend fewer true negatives per false one removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from gsimclr.method.samplers import batch_stats, negatives


def batch_suspects(z1: torch.Tensor, z2: torch.Tensor, n: int) -> torch.Tensor:
    """(N, N) bool: the pairs of images where one is among the other's `n` most similar in the batch.

    `z1[i]`, `z2[i]` are the two views' projections of image i; the score of a pair is the mean cosine similarity of
    its four view pairs.

    >>> z = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> batch_suspects(z, z, 1).int().tolist()
    [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    """
    if not 0 < n < len(z1):
        raise ValueError(f"n={n} suspects per image needs a batch of more than {n} images, got {len(z1)}")
    a, b = F.normalize(z1.detach().float(), dim=1), F.normalize(z2.detach().float(), dim=1)
    score = (a @ a.T + a @ b.T + b @ a.T + b @ b.T) / 4
    score.fill_diagonal_(float("-inf"))
    top = score.topk(n, dim=1).indices
    suspects = torch.zeros_like(score, dtype=torch.bool).scatter_(1, top, True)
    return suspects | suspects.T


class NeighbourDetector:
    """The suspects of each batch from epoch `warmup_epochs` + 1 on (before it, training is plain SimCLR), and the
    pairs flagged in the running epoch, for `SuspectDiagnostics` to score against the true labels (never read here).
    """

    def __init__(self, n: int, warmup_epochs: int) -> None:
        self.n, self.warmup_epochs = n, warmup_epochs
        self.active = False
        self.flagged: list[tuple[np.ndarray, torch.Tensor]] = []
        """One entry per batch of the running epoch: its dataset indices and its suspect mask's upper triangle, left
        on the training device -- reading the pairs out (`nonzero`, a copy to the host) waits for the device, so it
        happens once per epoch in `flagged_pairs`, not once per step."""

    def start_epoch(self, epoch: int) -> None:
        """Called as an epoch's batches are drawn: detection is on after the warm-up; the epoch's record starts."""
        self.active, self.flagged = epoch > self.warmup_epochs, []

    def __call__(self, z1: torch.Tensor, z2: torch.Tensor, batch: np.ndarray) -> Optional[torch.Tensor]:
        """The batch's suspect mask (None during the warm-up), recorded by dataset index."""
        if not self.active:
            return None
        suspects = batch_suspects(z1, z2, self.n)
        self.flagged.append((batch, torch.triu(suspects, diagonal=1)))
        return suspects

    def flagged_pairs(self) -> np.ndarray:
        """(P, 2): the dataset indices of each pair suspected in the running epoch, each unordered pair once."""
        pairs = [batch[np.argwhere(mask.cpu().numpy())] for batch, mask in self.flagged]
        return np.concatenate(pairs) if pairs else np.empty((0, 2), dtype=np.int64)


@dataclass(frozen=True)
class SuspectDiagnostics:
    """An epoch's batches -> the same-class pairs the loss still treats as negatives, the share of random batches'
    false negatives the detector removed, and its precision (`pseudo_pair_precision`: the share of suspected pairs
    that are same-class) -- the metrics `BatchDiagnostics` gives for pseudo labels, so reports read both alike."""

    true_labels: Optional[np.ndarray]
    """None where the images have no classes (an unlabelled pool): nothing is scored."""
    detector: NeighbourDetector

    def __call__(self, batches: Sequence[np.ndarray]) -> dict[str, float]:
        true = self.true_labels
        if true is None:
            return {}
        _, same_class = batch_stats(batches, true)
        out = {"same_class_pairs_per_batch": same_class}
        if not self.detector.flagged:
            return out | negatives(batches, true, same_class)
        pairs = self.detector.flagged_pairs()
        right = true[pairs[:, 0]] == true[pairs[:, 1]]
        out |= negatives(batches, true, same_class - float(right.sum()) / len(batches))
        if len(pairs):
            out["pseudo_pair_precision"] = float(right.mean())
        return out
