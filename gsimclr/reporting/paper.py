"""The G-SimCLR paper's published figures (Tables II and III), printed beside ours where datasets match."""

from __future__ import annotations

# Test accuracy in percent. The paper selected models on the test set with a single seed.
PAPER_RESULTS: dict[str, dict[str, float]] = {
    "cifar10": {
        "supervised": 73.62,
        "simclr/linear_P1": 37.69,
        "simclr/linear_P2": 39.4,
        "simclr/linear_P3": 39.92,
        "gsimclr/linear_P1": 38.15,
        "gsimclr/linear_P2": 41.01,
        "gsimclr/linear_P3": 40.5,
        "simclr/finetune": 42.21,
        "gsimclr/finetune": 43.1,
    },
    "imagenet_subset": {
        "supervised": 67.6,
        "simclr/linear_P1": 52.8,
        "simclr/linear_P2": 48.4,
        "simclr/linear_P3": 52.4,
        "gsimclr/linear_P1": 56.4,
        "gsimclr/linear_P2": 56.8,
        "gsimclr/linear_P3": 60.0,
        "simclr/finetune": 49.2,
        "gsimclr/finetune": 56.0,
    },
}
