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


def cpu_kind() -> str:
    """The CPU's numeric kind, e.g. `x86_64-avx2` or `x86_64-avx512-amx`: the vector width torch's kernels
    dispatch to, plus AMX. fp32 kernels of another width sum in another order, so results are bit-identical
    only between machines of one kind (measured: README, Reproducibility)."""
    capability = torch.backends.cpu.get_cpu_capability().lower().replace(" ", "")
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()  # torch.cpu's, private since 2.3
    return f"{platform.machine()}-{capability}" + ("-amx" if amx else "")


def hardware() -> str:
    """One line naming the machine a figure came from."""
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    threads = torch.get_num_threads()
    return f"{cpu_name()} [{cpu_kind()}] ({threads} thread{'s' * (threads != 1)}){gpu}, torch {torch.__version__}"
