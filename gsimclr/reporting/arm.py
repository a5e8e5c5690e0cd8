"""What the guided arm of a study did, and what a report may call it: G-SimCLR, a label-free variant, or the
oracle bound (true labels in pretraining: what perfect labels could buy, never a method that wins)."""

from __future__ import annotations

from gsimclr.evaluation.stats import Summary
from gsimclr.settings.config import Params
from gsimclr.settings.names import ORACLE_LABEL

LOSS_WORDS = {
    "keep": "NT-Xent (same-cluster images stay negatives, as the paper)",
    "cancel": "NT-Xent without same-cluster negatives (cancelled; Huynh et al. 2022)",
    "attract": "NT-Xent with same-cluster images as extra positives (attracted; Huynh et al. 2022)",
}
SUSPECT_WORDS = {
    "cancel": "NT-Xent without the suspected false negatives (cancelled; Huynh et al. 2022)",
    "attract": "NT-Xent with the suspected false negatives as extra positives (attracted; Huynh et al. 2022)",
}


def label_source(params: Params) -> str:
    """Where the guided arm's labels came from, in words."""
    g, c = params.guidance, params.cluster
    own = f"the model's own {g.refresh_features} embeddings (k={g.refresh_k or c.k})"
    if g.labels == "oracle":
        return f"the true training labels: {ORACLE_LABEL}"
    if g.labels == "network":
        return f"k-means of {own}, re-clustered every {g.refresh_every} epochs"
    if g.labels == "neighbours":
        return (
            f"each image's {g.neighbours} most similar other image{'s' * (g.neighbours > 1)} in its batch "
            "(mean cosine of the projections' view pairs) suspected as false negatives (Huynh et al. 2022's detection)"
        )
    source = f"k-means (k={c.k}) on {'raw pixels' if c.features == 'pixels' else 'autoencoder features'}"
    return source + (f", re-clustered from {own} every {g.refresh_every} epochs" if g.refresh_every else "")


def arm_description(params: Params) -> str:
    """What the guided arm of this study did, so a results.md of an option study says which option it is."""
    g = params.guidance
    words = SUSPECT_WORDS if g.labels == "neighbours" else LOSS_WORDS
    debiased = f"debiased NT-Xent (tau_plus={g.tau_plus:g})"
    loss = debiased if g.false_negatives == "debiased" else words[g.false_negatives]
    warmup = f" after {g.warmup_epochs} epochs of plain SimCLR" if g.warmup_epochs else ""
    split = (
        f" Training split long-tailed (imbalance ratio {params.data.imbalance_ratio:g})."
        if params.data.imbalance_ratio > 1
        else ""
    )
    name = ORACLE_LABEL if g.labels == "oracle" else "G-SimCLR arm"
    if g.labels == "neighbours":
        source = "no pseudo labels, " + label_source(params)
    elif g.reads_pseudo_labels:
        source = "pseudo labels from " + label_source(params)
    else:
        source = "no pseudo labels (random batches and a loss that reads none)"
    return f"{name}: {g.batches} batches, {loss}{warmup}; {source}.{split}"


def bound_verdict(difference: Summary) -> str:
    """Plain words for the oracle bound against SimCLR: how much perfect labels could buy, never a winner."""
    if difference.n == 1:
        return "upper bound, one seed: cannot tell"
    if not difference.excludes_zero:
        return "upper bound: no room above SimCLR that the seeds can see"
    return "upper bound: room above SimCLR" if difference.mean > 0 else "upper bound: below SimCLR"
