"""Weighted k-nearest-neighbour accuracy of frozen features: the monitor SSL libraries run during pretraining.

Wu et al. 2018 ("Unsupervised Feature Learning via Non-Parametric Instance Discrimination", Eq. 8):
each of a query's k nearest memory samples (cosine similarity s) votes for its class with weight
exp(s / T); the class with the largest total wins. solo-learn and lightly use the same rule with
k = 200 (ImageNet) and T = 0.1. It needs no training, so it can run every few epochs at little cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(
    memory: torch.Tensor,
    memory_labels: torch.Tensor,
    queries: torch.Tensor,
    n_classes: int,
    k: int,
    temperature: float,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class predicted for every query by a similarity-weighted vote of its k nearest memory samples.

    >>> memory = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> knn_predict(memory, torch.tensor([0, 0, 1]), torch.tensor([[0.1, 1.0], [1.0, 0.2]]), 2, k=1, temperature=0.1)
    tensor([1, 0])
    """
    if k > len(memory):
        raise ValueError(f"kNN k={k} is larger than the memory bank ({len(memory)} samples)")
    memory = F.normalize(memory.float(), dim=1)
    predictions = []
    for start in range(0, len(queries), chunk):
        similarity = F.normalize(queries[start : start + chunk].float(), dim=1) @ memory.T
        top_similarity, top_index = similarity.topk(k, dim=1)
        votes = torch.zeros(len(similarity), n_classes, device=similarity.device)
        votes.scatter_add_(1, memory_labels[top_index], (top_similarity / temperature).exp())
        predictions.append(votes.argmax(1))
    return torch.cat(predictions)


def knn_accuracy(
    memory: torch.Tensor,
    memory_labels: torch.Tensor,
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    k: int,
    temperature: float,
) -> float:
    """Share of queries whose kNN prediction is their label."""
    n_classes = int(max(memory_labels.max(), query_labels.max())) + 1
    predicted = knn_predict(memory, memory_labels, queries, n_classes, k, temperature)
    return float((predicted == query_labels.to(predicted.device)).float().mean())


@dataclass
class KnnMonitor:
    """Epoch -> `{"knn_val_acc": ...}` every `every` epochs and after the last (else `{}`; `every=0`: never).

    Memory bank: the features of the `fit` images; queries: the `val` images (the split evaluation selects on).
    """

    features: Callable[[], torch.Tensor]
    """The current network's features of every image (called only on a monitored epoch)."""
    labels: torch.Tensor
    fit: np.ndarray
    val: np.ndarray
    k: int
    temperature: float
    every: int
    epochs: int

    def __call__(self, epoch: int) -> dict[str, float]:
        if not self.every or (epoch % self.every and epoch != self.epochs):
            return {}
        features, labels = self.features(), self.labels
        accuracy = knn_accuracy(
            features[self.fit], labels[self.fit], features[self.val], labels[self.val], self.k, self.temperature
        )
        return {"knn_val_acc": accuracy}
