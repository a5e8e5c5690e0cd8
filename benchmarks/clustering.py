"""k-means at CIFAR-10 scale (50 000 x 2048 features, k = 64): time and quality of the candidates.

Features are a seeded Gaussian mixture with 64 centres (structure k-means can find, like real
bottleneck features). Quality is reported against scikit-learn's full (Lloyd) KMeans with one
initialisation (the reference): inertia ratio and adjusted Rand agreement of the labels. Target: <= 30 s on 2 CPU cores.

    python benchmarks/clustering.py [--n 50000] [--dim 2048] [--k 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from benchmarks.machine import describe, peak_memory


def candidates(k: int, seed: int) -> dict[str, KMeans | MiniBatchKMeans]:
    return {
        "KMeans n_init=1 (reference)": KMeans(n_clusters=k, n_init=1, random_state=seed),
        "KMeans n_init=3": KMeans(n_clusters=k, n_init=3, random_state=seed),
        "MiniBatchKMeans n_init=1, batch 4096": MiniBatchKMeans(
            n_clusters=k, n_init=1, batch_size=4096, random_state=seed
        ),
        "MiniBatchKMeans n_init=3, batch 4096": MiniBatchKMeans(
            n_clusters=k, n_init=3, batch_size=4096, random_state=seed
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--k", type=int, default=64)
    args = parser.parse_args()
    print(describe(torch.device("cpu")))
    features, _ = make_blobs(n_samples=args.n, n_features=args.dim, centers=args.k, cluster_std=8.0, random_state=0)
    features = features.astype(np.float32)
    print(f"{args.n} x {args.dim} float32 features, k = {args.k}\n")
    reference = None
    for name, model in candidates(args.k, 0).items():
        start = time.perf_counter()
        model.fit(features)
        seconds = time.perf_counter() - start
        inertia = float(((features - model.cluster_centers_[model.labels_]) ** 2).sum())  # same formula for all
        if reference is None:
            reference = (inertia, model.labels_)
        print(
            f"{name:40s} {seconds:6.1f} s   inertia / reference {inertia / reference[0]:.4f}   "
            f"ARI vs reference {adjusted_rand_score(reference[1], model.labels_):.3f}"
        )
    print(peak_memory(torch.device("cpu")))


if __name__ == "__main__":
    main()
