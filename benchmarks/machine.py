"""What a benchmark figure was measured on: every benchmark prints this first."""

from __future__ import annotations

import os
import resource

import torch

from gsimclr.system.machine import cpu_kind, cpu_name

VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
"""The CPU flags that decide which kernels torch and oneDNN run (and so the speed of every figure)."""


def cpu_flags() -> str:
    """Which of VECTOR_FLAGS this CPU has (from /proc/cpuinfo; `unknown` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next(line.split(":", 1)[1].split() for line in handle if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(flag for flag in VECTOR_FLAGS if flag in flags) or "none of " + " ".join(VECTOR_FLAGS)


def describe(device: torch.device) -> str:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none used"
    return (
        f"machine: {cpu_name()} [{cpu_kind()}; flags: {cpu_flags()}], {os.cpu_count()} cores "
        f"({torch.get_num_threads()} torch threads), GPU: {gpu}, torch {torch.__version__}, device {device}"
    )


def peak_memory(device: torch.device) -> str:
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    gpu = (
        f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else ""
    )
    return f"peak RSS {rss_gib:.2f} GiB{gpu}"
