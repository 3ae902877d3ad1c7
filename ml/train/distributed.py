"""Process group set-up for training under ``torchrun`` (one process per GPU, many nodes).

``torchrun --nproc-per-node=G [--nnodes=N --rdzv-endpoint=HOST:PORT] -m server.cli train ...``
sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; a plain ``galsearch train`` runs as rank 0 of
1 without a process group. The backend is NCCL on GPUs and gloo on CPUs, so the same code trains
on a laptop, in the CPU tests (two gloo processes) and on a GPU cluster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int  # global rank
    world_size: int
    local_rank: int  # rank on this node: the GPU index
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> this rank's GPU when CUDA is present, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' was asked but no CUDA GPU is visible; "
                               "use device=cpu or device=auto")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device_name: str = "auto") -> DistInfo:
    """Join the process group that torchrun describes (or none when run alone)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, device)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """Rank 0's decision, on every rank (time budget, non-finite loss)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=info.device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when the flag is true on any rank (a non-finite loss stops them all)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return bool(t.item() > 0)


def mean_over_ranks(value: float, info: DistInfo) -> float:
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / info.world_size
