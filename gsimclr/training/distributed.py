"""Data-parallel pretraining on PyTorch's own engine (DDP, launched by `torchrun`).

Every rank draws the same global batches (same sampler, same seed) and trains on its contiguous shard
of each; the projections of all shards are gathered **with autograd** so that NT-Xent runs over the
global batch, exactly as in one process. Each rank computes the same global loss, the gather's backward
sums the W copies of each local gradient, and DDP's mean over ranks divides by W again: parameter
gradients equal the single-process gradients of the global batch.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.nn.functional import all_gather
from torch.nn.parallel import DistributedDataParallel

from gsimclr.system.errors import UserError


@dataclass(frozen=True)
class World:
    """This process's place among data-parallel processes (a world of one without torchrun)."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Only the main rank writes artifacts, checkpoints and MLflow runs."""
        return self.rank == 0

    def shard(self, batch: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """This rank's contiguous slice of a global batch, and every rank's slice length (in rank order)."""
        parts = np.array_split(batch, self.size)
        return parts[self.rank], [len(part) for part in parts]

    def gather(self, z: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """All ranks' rows of `z` in rank order, differentiable; slices may differ in length by one."""
        if self.size == 1:
            return z
        padded = F.pad(z, (0, 0, 0, max(sizes) - len(z)))
        with warnings.catch_warnings():  # its successor lives in a private module (torch 2.15); keep the public API
            warnings.simplefilter("ignore", FutureWarning)
            parts = all_gather(padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])

    def broadcast(self, values: np.ndarray, device: torch.device) -> np.ndarray:
        """Rank 0's copy of an integer array on every rank (e.g. pseudo labels one rank computed)."""
        if self.size == 1:
            return values
        tensor = torch.as_tensor(values, dtype=torch.int64, device=device)
        dist.broadcast(tensor, src=0)
        return tensor.cpu().numpy()


def join_world(device: torch.device) -> World:
    """Join the process group `torchrun` describes in the environment; one process without it."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size())


def wrap_model(net: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DDP across ranks (BatchNorm synchronised on CUDA; per rank on CPU, where SyncBatchNorm is unsupported)."""
    if world.size == 1:
        return net
    if device.type == "cuda":
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        return DistributedDataParallel(net, device_ids=[device.index])
    return DistributedDataParallel(net)


def check_batch(world: World, batch_size: int) -> None:
    """The global batch must split evenly over the processes (each shard then holds whole images)."""
    if batch_size < world.size:
        raise UserError(
            f"pretrain.batch_size={batch_size} is smaller than the {world.size} processes: each needs an image"
        )
