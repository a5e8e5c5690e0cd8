"""The table `gsimclr label-quality` prints: one row per representation, its nearest neighbours' class agreement,
its suspects in random batches, then each k's clusters (`gsimclr.evaluation.label_quality`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gsimclr.evaluation.label_quality import batch_suspect_scores, cluster_scores, neighbour_agreement


def label_quality_table(
    features: Mapping[str, np.ndarray],
    true: np.ndarray,
    ks: Sequence[int],
    tops: Sequence[int],
    seed: int,
    batch_size: int,
    suspects: Sequence[int],
) -> str:
    """Markdown: per representation, same-class share of the 1st..n-th nearest neighbours, the precision / recall of
    n suspects per image in random batches of `batch_size`, and per k the clusters' NMI / purity / pair precision /
    pair recall."""
    chance = float(((np.bincount(true) / len(true)) ** 2).sum())
    header = [
        "representation",
        *(f"{n} nearest: same class" for n in tops),
        *(f"{n} suspect{'s' * (n > 1)} in a batch of {batch_size}: precision / recall" for n in suspects),
        *(f"k = {k}: NMI / purity / pair precision / pair recall" for k in ks),
    ]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(tops) + " --- |" * (len(suspects) + len(ks))]
    for name, rows in features.items():
        near = neighbour_agreement(rows, true, tops)
        in_batch = batch_suspect_scores(rows, true, batch_size, suspects, seed)
        clusters = [cluster_scores(rows, true, k, seed) for k in ks]
        cells = [
            name,
            *(f"{near[n]:.3f}" for n in tops),
            *(f"{in_batch[n]['precision']:.3f} / {in_batch[n]['recall']:.3f}" for n in suspects),
            *(
                f"{c['nmi']:.3f} / {c['purity']:.3f} / {c['pair_precision']:.3f} / {c['pair_recall']:.3f}"
                for c in clusters
            ),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Chance pair precision (two random images share a class): {chance:.3f}. Suspects: the pairs where one image "
        "is among the other's n most similar in its batch (`guidance.labels: neighbours`, scored here on the "
        "un-augmented embedding). Recall: the share of same-class pairs (SimCLR's false negatives) suspected, or "
        "sharing a cluster -- what cancelling them would remove."
    )
    return "\n".join(lines)
