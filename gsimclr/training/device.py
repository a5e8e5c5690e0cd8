"""Device auto-selection (cuda -> mps -> cpu) with an explicit override."""

from __future__ import annotations

import re

import torch

from gsimclr.system.errors import UserError


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively: a CUDA GPU that supports it, or a CPU with AMX or
    AVX512-BF16 (oneDNN's bf16 convolutions are then faster than fp32; on other CPUs it emulates them)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's, private since 2.3
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """`pretrain.precision` made concrete: `auto` becomes bf16 on native-bf16 devices, else fp32."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def select_device(name: str = "auto") -> torch.device:
    """The torch device for `--device` (auto: cuda, then mps, then cpu); an unusable one is a `UserError`."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", name):  # torch knows more (meta, xpu, ...) that this code never runs on
        raise UserError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} requested but MPS is not available")
    return device
