"""The report's diagnostics: how well the pseudo labels track the classes and how many false negatives (same-class
pairs) each arm's loss still pushes apart, averaged over seeds. The true labels measure here, never train."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from gsimclr.evaluation.stats import Summary, summarize
from gsimclr.reporting.arm import label_source
from gsimclr.reporting.rows import SeedOutputs, method_labels
from gsimclr.settings.config import Params
from gsimclr.settings.names import METHODS, NOT_MEASURED


def mean(values: Iterable[float]) -> Summary:
    """Mean ± interval over seeds."""
    return summarize(list(values))


def measured(value: Optional[float]) -> float:
    """A diagnostic every labelled run records (only an unlabelled pool leaves it out)."""
    assert value is not None, "a labelled run records every true-class diagnostic"
    return value


def uses_autoencoder_labels(params: Params) -> bool:
    """Whether the guided arm read the `cluster` stage's pseudo labels (the ones the report's first line scores)."""
    return params.guidance.labels == "autoencoder" and params.guidance.reads_pseudo_labels


def spread_and_losses(outputs: list[SeedOutputs], params: Params) -> list[str]:
    """What needs no true labels: distinct pseudo labels per batch, guided against random (when both count the
    autoencoder's labels), and the final losses."""
    guided = method_labels(params.guidance.labels)["gsimclr"]
    spread = [o.pretrain["gsimclr"].distinct_pseudo_labels_per_batch for o in outputs]
    losses = {m: mean(o.pretrain[m].loss for o in outputs) for m in METHODS}
    lines = [f"- Final NT-Xent loss: SimCLR {losses['simclr']}, {guided} {losses['gsimclr']}."]
    if any(value is None for value in spread):
        return lines
    distinct = mean(v or 0.0 for v in spread)
    if uses_autoencoder_labels(params) and not params.guidance.refresh_every:
        random_distinct = mean(o.cluster.random_distinct_pseudo_labels for o in outputs)
        return [
            f"- Distinct pseudo labels per {guided} batch: {distinct} (random batches of the same size: "
            f"{random_distinct}).",
            *lines,
        ]
    return [f"- Distinct labels per {guided} batch: {distinct} (its labels: {label_source(params)}).", *lines]


def unlabelled_diagnostics(outputs: list[SeedOutputs], params: Params) -> list[str]:
    """What can be measured without the classes of the images the autoencoder and pretraining trained on (an
    unlabelled pool): the pseudo labels' spread and the losses; the rest says it was not measured."""
    sizes = {key: mean(getattr(o.cluster, key) for o in outputs) for key in ("size_min", "size_max")}
    return [
        f"- Pseudo labels (k={params.cluster.k}): cluster sizes {sizes['size_min'].mean:.0f}–"
        f"{sizes['size_max'].mean:.0f} (means over seeds); NMI, ARI, purity and same-class pairs per batch: "
        f"{NOT_MEASURED} (the images the autoencoder and pretraining trained on have no classes).",
        *spread_and_losses(outputs, params),
    ]


def diagnostics(outputs: list[SeedOutputs], params: Params) -> list[str]:
    """Pseudo-label quality and false negatives per batch, averaged over seeds (true labels only measure)."""
    if any(o.cluster.nmi is None for o in outputs):
        return unlabelled_diagnostics(outputs, params)
    cluster = {
        key: mean(getattr(o.cluster, key) for o in outputs) for key in ("nmi", "ari", "purity", "size_min", "size_max")
    }
    random_pairs = mean(measured(o.pretrain["simclr"].same_class_pairs_per_batch) for o in outputs)
    guided_pairs = mean(measured(o.pretrain["gsimclr"].same_class_pairs_per_batch) for o in outputs)
    floor = measured(outputs[0].cluster.min_same_class_pairs)
    removable = random_pairs.mean - floor
    removed = f"{(random_pairs.mean - guided_pairs.mean) / removable:.0%}" if removable > 0 else "n/a"
    guided = [o.pretrain["gsimclr"] for o in outputs]
    name = method_labels(params.guidance.labels)["gsimclr"]
    refreshed = []
    if params.guidance.labels == "network" or params.guidance.refresh_every:
        nmi = mean(m.pseudo_label_nmi or 0.0 for m in guided)
        purity = (
            f", purity {mean(m.pseudo_label_purity or 0.0 for m in guided)}" if guided[0].pseudo_label_purity else ""
        )
        refreshed = [
            f"- Pseudo labels re-clustered from the model: NMI {nmi}{purity} at the last pretraining epoch "
            f"(the autoencoder's above: NMI {cluster['nmi'].mean:.3f})."
        ]
    if all(m.false_negatives_removed is not None for m in guided):
        negatives = mean(m.same_class_negatives_per_batch or 0.0 for m in guided)
        share = mean(m.false_negatives_removed or 0.0 for m in guided)
        precise = [m.pseudo_pair_precision for m in guided if m.pseudo_pair_precision is not None]
        acted_on = "suspected pairs" if params.guidance.labels == "neighbours" else "same-pseudo-label pairs in a batch"
        precision = f"; {summarize(precise)} of the {acted_on} share a class" if precise else ""
        refreshed.append(
            f"- Same-class pairs the {name} loss still treats as negatives: {negatives} per batch against "
            f"SimCLR's {random_pairs}: {share} of random batches' false negatives removed{precision}."
        )
    batching = (
        f"so guidance removed {removed} of the false negatives perfect labels could remove."
        if params.guidance.batches == "guided"
        else f"and the {name} arm's batches are random, as SimCLR's."
    )
    scored = (
        f"Pseudo labels (k={params.cluster.k})"
        if uses_autoencoder_labels(params)
        else f"The autoencoder's pseudo labels (k={params.cluster.k}; the {name} arm did not train on them)"
    )
    return [
        f"- {scored}: NMI {cluster['nmi'].mean:.3f}, ARI {cluster['ari'].mean:.3f}, "
        f"purity {cluster['purity'].mean:.3f}; cluster sizes {cluster['size_min'].mean:.0f}–"
        f"{cluster['size_max'].mean:.0f} (means over seeds).",
        f"- Same-class pairs per batch (pretrain.batch_size={params.pretrain.batch_size}, last pretraining epoch): "
        f"SimCLR {random_pairs}, {name} {guided_pairs}; the fewest any partition allows is {floor:.1f}, {batching}",
        *refreshed,
        *spread_and_losses(outputs, params),
    ]
