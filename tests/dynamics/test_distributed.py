"""Two CPU processes (gloo): the merged state equals the single-process state."""

from __future__ import annotations

import numpy as np
import torch
import torch.multiprocessing as mp

from dynamics.dist_worker import NUM_CLASSES, NUM_PIXELS, free_port, rank_updates, worker
from segforget.dynamics import ForgettingTracker


def test_two_processes_equal_single_process(tmp_path):
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    single = ForgettingTracker(NUM_PIXELS, NUM_CLASSES, confidence=True, history=True)
    for parts in zip(rank_updates(0), rank_updates(1)):
        logits, target, index = (np.concatenate(x) for x in zip(*parts))
        single.update(torch.as_tensor(logits), torch.as_tensor(target), index)
    expected = single.state_dict()
    assert int(expected["observations"].sum()) > 0
    for rank in range(2):
        state = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for name, value in expected.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(state[name], value), (rank, name)
            else:
                assert state[name] == value, (rank, name)
