"""k-means pseudo labels and their quality against true labels (a diagnostic, never a training signal)."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def kmeans_pseudo_labels(features: np.ndarray, k: int, n_init: int, seed: int) -> tuple[np.ndarray, float]:
    """Seeded k-means; returns (cluster of every row, inertia)."""
    model = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(features)
    return model.labels_.astype(np.int64), float(model.inertia_)


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
