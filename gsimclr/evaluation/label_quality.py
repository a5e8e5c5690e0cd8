"""What a trained encoder's embedding could give label-free guidance, measured against the true classes (a
diagnostic: the labels are read only to score).

Guidance that uses the network's own embedding -- refreshed k-means labels (PCL, Li et al. 2021; SwAV-style
prototypes), false-negative cancellation or attraction (Huynh et al. 2022), nearest-neighbour positives (NNCLR,
Dwibedi et al. 2021) -- can only be as right as the pairs it acts on. Two sources of pairs are scored:

- **nearest neighbours**: how often an image's n nearest neighbours (cosine) share its class;
- **k-means clusters** of the L2-normalised embedding: NMI and purity, the *precision* of the pairs a cluster
  makes (same-cluster pairs that are same-class) and their *recall* (same-class pairs that share a cluster: the
  share of SimCLR's false negatives that cancelling same-cluster negatives would remove, in expectation over
  random batches).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics.cluster import contingency_matrix

from gsimclr.method.clustering import cluster_quality, kmeans_pseudo_labels


def neighbour_agreement(
    features: np.ndarray, true: np.ndarray, tops: Sequence[int], chunk: int = 2048
) -> dict[int, float]:
    """For each n in `tops`: the share of (image, one of its n nearest neighbours by cosine, itself excluded) pairs
    of the same class.

    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> neighbour_agreement(x, np.array([0, 0, 1, 1]), [1, 2])
    {1: 1.0, 2: 0.5}
    """
    most = max(tops)
    if most >= len(true):
        raise ValueError(f"{most} neighbours need more than {len(true)} images")
    unit = F.normalize(torch.as_tensor(features, dtype=torch.float32), dim=1)
    labels = torch.as_tensor(true)
    hits = torch.zeros(most, dtype=torch.float64)
    for start in range(0, len(unit), chunk):
        similarity = unit[start : start + chunk] @ unit.T
        rows = torch.arange(similarity.shape[0])
        similarity[rows, rows + start] = -torch.inf  # an image is not its own neighbour
        nearest = similarity.topk(most, dim=1).indices
        hits += (labels[nearest] == labels[start : start + chunk, None]).double().sum(dim=0)
    cumulative = hits.cumsum(0)
    return {n: float(cumulative[n - 1] / (len(true) * n)) for n in tops}


def pair_scores(pseudo: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Precision and recall of the pairs that share a pseudo label, against same-class pairs.

    >>> pair_scores(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]))
    {'pair_precision': 0.3333333333333333, 'pair_recall': 0.5}
    """
    table = contingency_matrix(true, pseudo).astype(np.float64)
    pairs = lambda counts: float((counts * (counts - 1) / 2).sum())  # noqa: E731 - pairs within each group
    both, same_cluster, same_class = pairs(table), pairs(table.sum(axis=0)), pairs(table.sum(axis=1))
    return {
        "pair_precision": both / same_cluster if same_cluster else 0.0,
        "pair_recall": both / same_class if same_class else 0.0,
    }


def cluster_scores(features: np.ndarray, true: np.ndarray, k: int, seed: int, n_init: int = 3) -> dict[str, float]:
    """k-means (seeded, `n_init` restarts) of the L2-normalised `features`, scored against `true`."""
    unit = F.normalize(torch.as_tensor(features, dtype=torch.float32), dim=1).numpy()
    pseudo, _ = kmeans_pseudo_labels(unit, k, n_init, seed)
    quality = cluster_quality(pseudo, true)
    return {"nmi": quality["nmi"], "purity": quality["purity"], **pair_scores(pseudo, true)}
