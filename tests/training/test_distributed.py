"""Two `gloo` processes on CPU: NT-Xent over the gathered global batch gives the single-process loss and gradients.

The model here has no BatchNorm: BatchNorm statistics are per rank under DDP (SyncBatchNorm needs CUDA),
which is a documented difference, not what this test is about. What it checks is the classic SimCLR
porting bug: gathering embeddings without autograd silently drops the other ranks' gradient paths.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TINY_PARAMS, command_env, write_params
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gsimclr.method.losses import nt_xent
from gsimclr.method.samplers import GuidedBatchSampler
from gsimclr.training.distributed import World

BATCH = 11  # odd: the two shards differ in length (6 and 5), which the gather must handle
EVEN = 12  # the detached gather below cannot handle unequal shards


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 8))


def views(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(batch, 3, 4, 4, generator=generator), torch.rand(batch, 3, 4, 4, generator=generator)


def detached_gather(z: torch.Tensor, world: World) -> torch.Tensor:
    """The classic port: `dist.all_gather` (no autograd), own slot put back with its gradient."""
    parts = [torch.empty_like(z) for _ in range(world.size)]
    dist.all_gather(parts, z.detach().contiguous())
    parts[world.rank] = z
    return torch.cat(parts)


def global_step(model: nn.Module, world: World, batch: int, gather: str = "autograd") -> torch.Tensor:
    v1, v2 = views(batch)
    local, sizes = world.shard(np.arange(batch))
    z1, z2 = model(torch.cat([v1[local], v2[local]])).chunk(2)
    if gather == "autograd":
        z1, z2 = world.gather(z1, sizes), world.gather(z2, sizes)
    elif gather == "detached":
        z1, z2 = detached_gather(z1, world), detached_gather(z2, world)
    loss = nt_xent(z1, z2, 0.1)
    loss.backward()
    return loss


def worker(rank: int, rendezvous: str, results: dict, batch: int, gather: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    model = DistributedDataParallel(make_model())
    loss = global_step(model, World(rank, 2), batch, gather)
    results[rank] = (loss.item(), [p.grad.clone() for p in model.parameters()])
    dist.destroy_process_group()


def run_two_ranks(rendezvous, batch: int = BATCH, gather: str = "autograd") -> dict:
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(worker, args=(str(rendezvous), results, batch, gather), nprocs=2, join=True)
        return dict(results)


def single_process(batch: int = BATCH) -> tuple[float, list[torch.Tensor]]:
    model = make_model()
    loss = global_step(model, World(), batch)
    return loss.item(), [p.grad.clone() for p in model.parameters()]


def test_two_ranks_equal_one_process_on_the_global_batch(tmp_path):
    reference_loss, reference_grads = single_process()
    for loss, grads in run_two_ranks(tmp_path / "rendezvous").values():
        assert abs(loss - reference_loss) < 1e-5
        for grad, expected in zip(grads, reference_grads, strict=True):
            torch.testing.assert_close(grad, expected, atol=1e-5, rtol=1e-5)


def test_the_check_catches_a_local_loss_and_a_gather_without_autograd(tmp_path):
    """The check above can fail: a per-shard loss is another loss; a detached gather halves the gradients."""
    reference_loss, reference_grads = single_process(EVEN)
    local = run_two_ranks(tmp_path / "local", EVEN, gather="none")
    assert any(abs(loss - reference_loss) > 1e-3 for loss, _ in local.values())
    detached = run_two_ranks(tmp_path / "detached", EVEN, gather="detached")
    loss, grads = detached[0]
    assert abs(loss - reference_loss) < 1e-5  # the loss looks right ...
    torch.testing.assert_close(grads[0], reference_grads[0] / 2, atol=1e-5, rtol=1e-4)  # ... the gradients are not


def broadcast_worker(rank: int, rendezvous: str, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    own = np.arange(6) * (rank + 1) + 100 * rank  # each rank's own (different) k-means answer
    results[rank] = World(rank, 2).broadcast(own, torch.device("cpu"))
    dist.destroy_process_group()


def test_every_rank_guides_with_rank_0s_pseudo_labels(tmp_path):
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(broadcast_worker, args=(str(tmp_path / "rendezvous"), results), nprocs=2, join=True)
        assert np.array_equal(results[0], np.arange(6)) and np.array_equal(results[1], np.arange(6))


def test_shards_cover_every_image_once_and_keep_global_batches_stratified():
    pseudo = np.repeat(np.arange(8), 5)  # 8 clusters of 5: with batch 8, one image per cluster per global batch
    sampler = GuidedBatchSampler(pseudo, 8, seed=0)
    for size in (2, 3):
        seen = []
        for batch in sampler.batches(epoch=1):
            shards = [World(rank, size).shard(batch)[0] for rank in range(size)]
            union = np.concatenate(shards)
            np.testing.assert_array_equal(union, batch)  # shards partition the global batch, in order
            assert len(set(pseudo[union])) == len(union)  # at most one image per cluster in the global batch
            seen.extend(union)
        assert sorted(seen) == list(range(len(pseudo)))


def test_torchrun_pretrains_data_parallel_and_only_rank_0_writes(tmp_path):
    write_params(tmp_path / "params.yaml", TINY_PARAMS)
    bin_dir = Path(sys.executable).parent
    env = command_env()
    result = subprocess.run(
        [
            str(bin_dir / "torchrun"),
            "--standalone",
            "--nproc_per_node",
            "2",
            "--no-python",
            "gsimclr",
            "--device",
            "cpu",
            "pretrain",
            "--method",
            "simclr",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("simclr: final NT-Xent loss") == 1, result.stdout
    metrics = json.loads((tmp_path / "metrics" / "seed0" / "pretrain_simclr.json").read_text())
    assert metrics["processes"] == 2 and metrics["epochs"] == TINY_PARAMS["pretrain"]["epochs"]
    state = torch.load(tmp_path / "artifacts" / "seed0" / "pretrain_simclr.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in state["model"])  # the bare network, loadable anywhere
    code = (
        "import mlflow; mlflow.set_tracking_uri('sqlite:///" + str(tmp_path / "mlruns" / "mlflow.db") + "');"
        "print(len(mlflow.search_runs(search_all_experiments=True)))"
    )
    runs = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert runs.stdout.strip() == "1"
