"""Merging observations across ``torch.distributed`` ranks by gathering (index, value) pairs.

A tracker indexed by pixel cannot merge by summing states (forgetting depends on the order of
observations); instead every rank gathers the observations of all ranks for the current update
and applies them as one update, so every rank holds the single-process state. Duplicates across
ranks (DistributedSampler padding) reduce like duplicates within one call.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["world_size", "all_gather_cat", "gather_observations"]


def world_size() -> int:
    """Number of processes, 1 when torch.distributed is not initialized."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _communication_device(device: torch.device) -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu") if device.type != "cpu" and dist.get_backend() == "gloo" else device


def _all_gather_cat(tensor: torch.Tensor, sizes: list[int], comm: torch.device) -> torch.Tensor:
    """Concatenate a 1-D tensor of every rank, in rank order (sizes may differ)."""
    longest = max(sizes)
    padded = torch.zeros(longest, dtype=tensor.dtype, device=comm)
    padded[: tensor.numel()] = tensor.to(comm)
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)]).to(tensor.device)


def all_gather_cat(tensors: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """Concatenate, in rank order, 1-D tensors of every rank (each rank's tensors share one
    length, which may differ between ranks). None entries stay None.

    Exchanging the lengths reads a value on the host: the one sync a distributed update needs.
    """
    present = [t for t in tensors if t is not None]
    comm = _communication_device(present[0].device)
    size = torch.tensor([present[0].numel()], dtype=torch.int64, device=comm)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    out = []
    for tensor in tensors:
        if tensor is None:
            out.append(None)
        elif tensor.dtype == torch.bool:
            # bool is not supported by every backend's all_gather; uint8 is.
            out.append(_all_gather_cat(tensor.to(torch.uint8), counts, comm).to(torch.bool))
        else:
            out.append(_all_gather_cat(tensor, counts, comm))
    return out


def gather_observations(
    index: torch.Tensor,
    correct: torch.Tensor,
    classes: torch.Tensor,
    prob: torch.Tensor | None,
    margin: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """All-gather one update's flat observations (N,) of every rank; -1 index = unobserved."""
    index, correct, classes, prob, margin = all_gather_cat([index, correct, classes, prob, margin])
    return index, correct, classes, prob, margin
