"""The table `gsimclr label-quality` prints: one row per representation, its nearest neighbours' class agreement,
then each k's clusters (`gsimclr.evaluation.label_quality`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gsimclr.evaluation.label_quality import cluster_scores, neighbour_agreement


def label_quality_table(
    features: Mapping[str, np.ndarray], true: np.ndarray, ks: Sequence[int], tops: Sequence[int], seed: int
) -> str:
    """Markdown: per representation, same-class share of the 1st..n-th nearest neighbours, and per k the clusters'
    NMI / purity / pair precision / pair recall."""
    chance = float(((np.bincount(true) / len(true)) ** 2).sum())
    header = [
        "representation",
        *(f"{n} nearest: same class" for n in tops),
        *(f"k = {k}: NMI / purity / pair precision / pair recall" for k in ks),
    ]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(tops) + " --- |" * len(ks)]
    for name, rows in features.items():
        near = neighbour_agreement(rows, true, tops)
        clusters = [cluster_scores(rows, true, k, seed) for k in ks]
        cells = [
            name,
            *(f"{near[n]:.3f}" for n in tops),
            *(
                f"{c['nmi']:.3f} / {c['purity']:.3f} / {c['pair_precision']:.3f} / {c['pair_recall']:.3f}"
                for c in clusters
            ),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Chance pair precision (two random images share a class): {chance:.3f}. Pair recall: the share of same-class "
        "pairs (SimCLR's false negatives) that share a cluster -- what cancelling same-cluster negatives would remove."
    )
    return "\n".join(lines)
