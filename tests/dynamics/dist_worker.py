"""Worker of test_distributed.py, in its own module so spawned processes can import it."""

from __future__ import annotations

import os
import socket

import numpy as np
import torch
import torch.distributed as dist

from segforget.dynamics import ForgettingTracker

NUM_PIXELS, NUM_CLASSES, STEPS = 60, 3, 8


def rank_updates(rank: int):
    """Each rank's batches; ranks draw from the same pixels, so duplicates cross ranks. Rank 1
    has a smaller batch, as with an uneven last batch."""
    rng = np.random.default_rng(100 + rank)
    batch = 3 if rank == 0 else 2
    out = []
    for step in range(STEPS):
        logits = rng.normal(size=(batch, NUM_CLASSES, 2, 5)).astype(np.float32)
        target = rng.integers(0, NUM_CLASSES, size=(batch, 2, 5))
        target[rng.random(target.shape) < 0.1] = 255
        index = rng.integers(-1, NUM_PIXELS, size=(batch, 2, 5))
        if step % 4 == 1:
            # Whole blocks, one the same on both ranks (DistributedSampler padding).
            offsets = [0, 10 + 10 * rank, 30][:batch]
            index = np.array(offsets).reshape(-1, 1, 1) + np.arange(10).reshape(2, 5)
        elif step % 4 == 3:
            # Disjoint whole blocks: the gathered update stays on the fast path.
            offsets = [[0, 10, 20], [50, 30]][rank]
            index = np.array(offsets).reshape(-1, 1, 1) + np.arange(10).reshape(2, 5)
        out.append((logits, target, index))
    return out


def worker(rank: int, port: int, out_dir: str):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        tracker = ForgettingTracker(NUM_PIXELS, NUM_CLASSES, confidence=True, history=True)
        for step, (logits, target, index) in enumerate(rank_updates(rank)):
            if step % 2:
                tracker.update_blocks(
                    torch.as_tensor(logits), torch.as_tensor(target), index[:, 0, 0].tolist()
                )
            else:
                tracker.update(torch.as_tensor(logits), torch.as_tensor(target), index)
        torch.save(tracker.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
