"""What a trained encoder's embedding could give label-free guidance, measured against the true classes (a
diagnostic: the labels are read only to score).

Guidance that uses the network's own embedding -- refreshed k-means labels (PCL, Li et al. 2021; SwAV-style
prototypes), false-negative cancellation or attraction (Huynh et al. 2022), nearest-neighbour positives (NNCLR,
Dwibedi et al. 2021) -- can only be as right as the pairs it acts on. Three sources of pairs are scored:

- **nearest neighbours**: how often an image's n nearest neighbours (cosine) share its class;
- **suspects in a batch** (`guidance.labels: neighbours`): in random batches, the pairs where one image is among
  the other's n most similar -- their precision, and their recall (the share of the batches' same-class pairs,
  SimCLR's false negatives, they would cancel or attract);
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
from gsimclr.method.neighbours import batch_suspects


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


def batch_suspect_scores(
    features: np.ndarray, true: np.ndarray, batch_size: int, ns: Sequence[int], seed: int
) -> dict[int, dict[str, float]]:
    """For each n in `ns`: the precision and recall of `guidance.labels: neighbours`' suspects (n per image) in one
    epoch of random batches of `batch_size` (seeded; a last, smaller batch is dropped), scored on one view per image
    -- the embedding itself, where training scores two augmented views.

    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> batch_suspect_scores(x, np.array([0, 0, 1, 1]), 4, [1, 2], seed=0)
    {1: {'precision': 1.0, 'recall': 1.0}, 2: {'precision': 0.4, 'recall': 1.0}}
    """
    if not 0 < max(ns) < batch_size <= len(true):
        raise ValueError(f"{max(ns)} suspects per image need batches of more images, at most the {len(true)} images")
    order = np.random.default_rng(seed).permutation(len(true))
    unit = torch.as_tensor(features, dtype=torch.float32)
    labels = torch.as_tensor(true)
    suspected, right, same_class = dict.fromkeys(ns, 0), dict.fromkeys(ns, 0), 0
    for start in range(0, len(order) - batch_size + 1, batch_size):
        batch = torch.as_tensor(order[start : start + batch_size])
        z, y = unit[batch], labels[batch]
        same = torch.triu(y[:, None] == y[None, :], diagonal=1)
        same_class += int(same.sum())
        for n in ns:
            pairs = torch.triu(batch_suspects(z, z, n), diagonal=1)
            suspected[n] += int(pairs.sum())
            right[n] += int((pairs & same).sum())
    return {
        n: {
            "precision": right[n] / suspected[n] if suspected[n] else 0.0,
            "recall": right[n] / same_class if same_class else 0.0,
        }
        for n in ns
    }
