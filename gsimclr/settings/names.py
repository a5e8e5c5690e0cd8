"""The names a user types and the pipeline files its results under, each written once: the CLI's choices,
the file layout (`gsimclr.pipeline.layout`), the declared params (`gsimclr.settings.declared`) and the
results tables all derive from these."""

from __future__ import annotations

from typing import Literal, TypeGuard, get_args

Method = Literal["simclr", "gsimclr"]
"""A pretraining method: SimCLR's random batches or G-SimCLR's pseudo-label-guided ones."""
Control = Literal["random_init", "pixels"]
"""What every pretrained representation must beat under the same probe: the network untrained, raw pixels."""
EvalMethod = Literal[Method, "supervised", Control]
"""What `evaluate --method` evaluates: a pretrained network, the supervised reference, or a control."""
Classifier = Literal["finetune", "supervised"]
"""A classifier `evaluate` trains end to end (each is also its section of `params.evaluate`)."""
Stage = Literal["autoencoder", "cluster", "pretrain", "evaluate"]
"""A per-seed stage that leaves a run record (`compare`, across seeds, leaves results instead)."""
Stream = Literal["auto", "on", "off"]
"""Whether a stage copies each split onto its device (`off`), streams batches from the prepared arrays
(`on`), or decides by the split's size against the device's free memory (`auto`)."""

ORACLE_LABEL = "oracle (uses true labels: an upper bound, not a method)"
"""How every report, table row and MLflow run names a G-SimCLR arm guided by the true labels
(`guidance.labels: oracle`): a measurement of what perfect labels could buy, never a method that wins."""
ORACLE_PREFIX = "oracle_bound"
"""The oracle arm's MLflow run names and metric names start with this."""

NOT_MEASURED = "not measured: unlabelled pool"
"""What the metrics files and reports say in place of a diagnostic that needs the true classes of the images the
unsupervised stages train on (NMI, same-class pairs per batch) when those are an unlabelled pool (`data.pool`)."""
UNMEASURED_KEY = "true_label_diagnostics"
"""The metrics-file entry (and MLflow tag) that holds `NOT_MEASURED`."""

PIXELS: Control = "pixels"
"""The raw-pixel control, and the name of its one representation (a linear probe on the pixels)."""

METHODS: tuple[Method, ...] = get_args(Method)
METHOD_NAMES: dict[str, str] = {"simclr": "SimCLR", "gsimclr": "G-SimCLR"}
"""How reports, figures and the model registry name each pretraining arm."""
CONTROLS: tuple[Control, ...] = get_args(Control)
EVAL_METHODS: tuple[EvalMethod, ...] = get_args(EvalMethod)


def is_pretrained(method: str) -> TypeGuard[Method]:
    """Whether `evaluate --method` names a pretrained network (the others are the reference and controls)."""
    return method in METHODS
