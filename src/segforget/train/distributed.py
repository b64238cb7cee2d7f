"""torch.distributed helpers: start from torchrun's environment, shard work, rank-0-only writes.

``torchrun --nproc_per_node=N -m segforget train ...`` sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; :func:`setup_distributed` then starts a process group (gloo on CPU, nccl on CUDA).
Without those variables everything runs in one process and these helpers are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistributedContext", "setup_distributed", "shard", "broadcast_object"]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: rank, world size and whether it started the process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in one process)."""
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: torch.device) -> DistributedContext:
    """Join the process group described by torchrun's environment variables (if any).

    Args:
        device: the training device; CUDA uses nccl and the local rank's GPU, CPU uses gloo.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
        owns = True
    return DistributedContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        owns_group=owns,
    )


def shard(count: int, context: DistributedContext) -> list[int | None]:
    """Positions ``0..count-1`` this rank handles, padded with None to the same length on all ranks.

    Every rank gets ``ceil(count / world_size)`` entries so collective calls line up; a None
    entry means "take part in the collective with nothing to contribute".
    """
    world = context.world_size
    per_rank = -(-count // world) if count else 0
    mine: list[int | None] = list(range(context.rank, count, world))
    return mine + [None] * (per_rank - len(mine))


def broadcast_object(value: object, context: DistributedContext) -> object:
    """Rank 0's ``value`` on every rank."""
    if not context.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
