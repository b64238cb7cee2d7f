"""A tracker on a CUDA device holds exactly the state of a CPU tracker given the same updates.

These run only where a CUDA GPU is present (`scripts/gpu-check.sh` runs them with the GPU
benchmark); everywhere else the CPU tests cover the same routes: the GPU takes the torch
path's gather/scatter route for `update` and its block path for `update_blocks`, both of which
the CPU tests compare with the independent reference (`native=False`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamics.reference import FLOAT_FIELDS, INT_FIELDS
from segforget.dynamics import ForgettingTracker

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (scripts/gpu-check.sh runs these)"
)


def _batches(rng, sections=12, height=6, width=9, classes=5, steps=12):
    block = height * width
    out = []
    for step in range(steps):
        chosen = rng.choice(sections, size=4, replace=False)
        target = rng.integers(0, classes, size=(4, height, width))
        target[rng.random(target.shape) < 0.1] = 255
        logits = rng.normal(size=(4, classes, height, width)).astype(np.float32)
        logits[:, 0] += 1.5 * (step % 3 == 0)
        index = chosen.reshape(4, 1, 1) * block + np.arange(block).reshape(height, width)
        if step % 4 == 1:  # flipped
            index = index[..., ::-1]
        elif step % 4 == 2:  # duplicates and padding: the scatter path
            index = index[:, ::-1].copy()
            index[1] = index[0]
            index[:, 0, :2] = -1
        elif step % 4 == 3:  # entries anywhere
            index = rng.integers(-1, sections * block, size=index.shape)
        out.append((logits, target, np.ascontiguousarray(index), [int(c) * block for c in chosen]))
    return out, sections * block, classes


@pytest.mark.parametrize("extras", [False, True], ids=["core", "confidence+history"])
def test_cuda_tracker_equals_cpu_tracker(extras):
    rng = np.random.default_rng(0)
    batches, num_pixels, classes = _batches(rng)
    trackers = {
        device: ForgettingTracker(
            num_pixels, classes, device=device, confidence=extras, history=extras
        )
        for device in ("cpu", "cuda")
    }
    for step, (logits, target, index, offsets) in enumerate(batches):
        for device, tracker in trackers.items():
            logits_d = torch.from_numpy(logits).to(device)
            target_d = torch.from_numpy(target).to(device)
            if step % 8 == 0:
                tracker.update_blocks(logits_d, target_d, offsets)
            else:
                # The index as a data loader yields it (on the host: blocks at step 4 mod 8,
                # mirrored blocks at 1 mod 4, spread entries at 3 mod 4), or on the device.
                index_d = torch.from_numpy(index)
                tracker.update(logits_d, target_d, index_d.to(device) if step % 4 == 2 else index_d)
    cpu, gpu = trackers["cpu"].compute(), trackers["cuda"].compute()
    for name in INT_FIELDS:
        np.testing.assert_array_equal(getattr(gpu, name), getattr(cpu, name), err_msg=name)
    if extras:
        for name in FLOAT_FIELDS:
            np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-5, atol=1e-6)
        pixels = np.arange(0, num_pixels, 7)
        np.testing.assert_array_equal(
            gpu.correctness_history(pixels), cpu.correctness_history(pixels)
        )
    assert cpu.forgetting_events.sum() > 0 and cpu.switch_events.sum() > 0


def test_cuda_state_dict_round_trips_through_the_cpu():
    rng = np.random.default_rng(1)
    batches, num_pixels, classes = _batches(rng, steps=4)
    gpu = ForgettingTracker(num_pixels, classes, device="cuda")
    for logits, target, index, _ in batches:
        gpu.update(
            torch.from_numpy(logits).cuda(),
            torch.from_numpy(target).cuda(),
            torch.from_numpy(index).cuda(),
        )
    cpu = ForgettingTracker(num_pixels, classes)
    cpu.load_state_dict(
        {k: v.cpu() if torch.is_tensor(v) else v for k, v in gpu.state_dict().items()}
    )
    a, b = gpu.compute(), cpu.compute()
    np.testing.assert_array_equal(a.forgetting_events, b.forgetting_events)
    np.testing.assert_array_equal(a.switch_events, b.switch_events)


@pytest.mark.parametrize("extras", [False, True], ids=["core", "confidence+history"])
def test_cuda_updates_never_wait_for_the_device(extras):
    """No host-device round trip per update: with torch's sync debug mode set to "error",
    any operation that makes the host wait for the GPU (``.item()``, ``bool(tensor)``, a
    device-to-host copy, ``nonzero``) raises. Inputs are on the GPU already, block offsets are
    host ints, as in training."""
    rng = np.random.default_rng(2)
    batches, num_pixels, classes = _batches(rng, steps=16)
    tracker = ForgettingTracker(
        num_pixels, classes, device="cuda", confidence=extras, history=extras
    )
    on_device = [
        (torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda(), torch.from_numpy(c).cuda(), d)
        for a, b, c, d in batches
    ]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step, (logits, target, index, offsets) in enumerate(on_device):
            if step % 4 == 0:
                tracker.update_blocks(logits, target, offsets)
            else:
                tracker.update(logits, target, index)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert tracker.compute().observations.max() > 0


@pytest.mark.parametrize("extras", [False, True], ids=["core", "confidence+history"])
def test_cuda_host_side_pixel_index_never_waits_for_the_device(extras):
    """As in training: logits and targets on the GPU, pixel_index from the data loader on the
    host. Whole (or mirrored) sections are found on the host and the index stays there; any
    other index is copied without making the host wait for the GPU."""
    rng = np.random.default_rng(3)
    batches, num_pixels, classes = _batches(rng, steps=16)
    tracker = ForgettingTracker(
        num_pixels, classes, device="cuda", confidence=extras, history=extras
    )
    on_device = [
        (torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda(), torch.from_numpy(c))
        for a, b, c, _ in batches
    ]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for logits, target, index in on_device:
            tracker.update(logits, target, index)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    reference = ForgettingTracker(num_pixels, classes, confidence=extras, history=extras)
    for logits, target, index, _ in batches:
        reference.update(torch.from_numpy(logits), torch.from_numpy(target), index)
    gpu, cpu = tracker.compute(), reference.compute()
    for name in INT_FIELDS:
        np.testing.assert_array_equal(getattr(gpu, name), getattr(cpu, name), err_msg=name)
