"""Which machine a figure came from: printed in results and benchmarks."""

from __future__ import annotations

import platform

import torch


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one, else the platform's word)."""
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def hardware() -> str:
    """One line naming the machine a figure came from."""
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu_name()} ({torch.get_num_threads()} threads){gpu}, torch {torch.__version__}"
