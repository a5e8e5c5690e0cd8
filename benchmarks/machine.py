"""What a benchmark figure was measured on: every benchmark prints this first."""

from __future__ import annotations

import os
import resource

import torch

from gsimclr.machine import cpu_name


def describe(device: torch.device) -> str:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none used"
    return (
        f"machine: {cpu_name()}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads), GPU: {gpu}, "
        f"torch {torch.__version__}, device {device}"
    )


def peak_memory(device: torch.device) -> str:
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    gpu = (
        f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else ""
    )
    return f"peak RSS {rss_gib:.2f} GiB{gpu}"
