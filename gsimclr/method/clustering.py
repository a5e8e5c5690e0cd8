"""k-means pseudo labels and their quality against true labels (a diagnostic, never a training signal)."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def fit_kmeans(features: np.ndarray, k: int, n_init: int, seed: int) -> KMeans:
    """Seeded k-means of `features` (the one clustering of the `cluster` stage and of every refresh)."""
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(features)


def kmeans_pseudo_labels(features: np.ndarray, k: int, n_init: int, seed: int) -> tuple[np.ndarray, float]:
    """Seeded k-means; returns (cluster of every row, inertia)."""
    model = fit_kmeans(features, k, n_init, seed)
    return model.labels_.astype(np.int64), float(model.inertia_)


def kmeans_with_distances(features: np.ndarray, k: int, n_init: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded k-means; returns (cluster of every row, its distance to that cluster's centre)."""
    model = fit_kmeans(features, k, n_init, seed)
    labels = model.labels_.astype(np.int64)
    return labels, model.transform(features)[np.arange(len(labels)), labels]


def keep_confident(labels: np.ndarray, distance: np.ndarray, share: float) -> np.ndarray:
    """Chen et al. 2022 (incremental false-negative detection): only the `share` of each cluster nearest its
    centre keeps its label; every other image becomes a class of its own, so no pair with it counts as a false
    negative. Per cluster, so that a loose cluster is thinned, not dropped.

    >>> keep_confident(np.array([0, 0, 0, 0, 1, 1]), np.array([0.1, 0.4, 0.2, 0.3, 0.5, 0.1]), 0.5).tolist()
    [0, 2, 0, 3, 4, 1]
    """
    kept = labels.copy()
    own = labels.max(initial=-1) + 1
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        doubtful = members[np.argsort(distance[members], kind="stable")][int(np.ceil(share * len(members))) :]
        kept[doubtful] = -1
    singles = np.flatnonzero(kept == -1)
    kept[singles] = own + np.arange(len(singles))
    return kept


def cluster_quality(pseudo: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """NMI, ARI and purity (share of images whose cluster's majority class is their own)."""
    table = contingency_matrix(true, pseudo)
    return {
        "nmi": float(normalized_mutual_info_score(true, pseudo)),
        "ari": float(adjusted_rand_score(true, pseudo)),
        "purity": float(table.max(axis=0).sum() / table.sum()),
    }


def size_stats(pseudo: np.ndarray) -> dict[str, float]:
    """Number of clusters and the smallest, largest and mean cluster size (empty clusters show as fewer clusters)."""
    sizes = np.bincount(pseudo)
    return {
        "clusters": float(len(sizes)),
        "size_min": float(sizes.min()),
        "size_max": float(sizes.max()),
        "size_mean": float(sizes.mean()),
    }
