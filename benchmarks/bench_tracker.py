"""Throughput of ForgettingTracker.update on an F3-sized pixel space, against a naive reference.

F3 training volume, inline view: 401 sections of 255 x 701 pixels (71.7 M pixels); batches of 8
whole sections in random order, predicted classes and targets as int64 (what argmax and the
data set give). Measured in one run:

Each tracker case runs twice: with the fused C kernel (the default on CPU when a C compiler is
present) and with the torch path (``native=False``, the path on GPU and without a compiler).

- fast path:    ``tracker.update_blocks(pred, target, offsets)`` (sections are contiguous blocks)
- update, h-flipped: ``tracker.update`` on horizontally flipped sections (the common
  augmentation; a CPU tracker detects them as mirrored blocks and takes the block path, the
  fused kernel reading each line right to left, the torch path flipping the inputs back)
- update, upside-down: ``tracker.update`` on vertically flipped sections (not a contiguous
  block; with the fused kernel every row is a run of the pixel space, so the row-run route
  updates each row in place; the torch path scatters them into windows);
- scatter path: ``tracker.update(pred, target, pixel_index)`` on sections rotated by 5 degrees
  (nearest pixel, -1 outside: rows are not runs, so the general scatter path runs). On CPU it
  scatters the observations into dense windows of the pixel space (the samples' index ranges
  are compact) and updates them like blocks;
- scatter path, gather/scatter route: the same with windows turned off: gathers the state,
  reduces duplicates, scatters it back (the route on GPU, and on CPU for entries spread over
  the whole pixel space)
- naive:        four float64 numpy arrays per pixel (previous correctness, previous prediction,
  forgetting count, switch count) updated with numpy fancy indexing, timed on the same inputs
  as each tracker case (sections in order, h-flipped, upside-down, rotated; on rotated
  sections it first drops the entries without a source pixel, index -1, as it must to be
  correct). ``x naive`` compares each case with the naive reference on its own inputs, ``x
  fastest`` with the fastest naive row (the most conservative ratio).
Rates are pixels per CPU-second of this process (``time.process_time``; torch and numpy both
single-threaded), the best of ``--repeats`` (3) timed passes over the batches, so a pass slowed
by another process sharing the machine does not count; wall-clock rates are printed too. On
GPU, wall-clock with synchronization.

- the machine's memory copy bandwidth (a large ``np.copyto``; bytes read + written per second),
  and the fraction of it the update reaches, counting the bytes the update must move: inputs
  read (prediction + target, 16 B/pixel for int64; + 8 B/pixel of int64 ``pixel_index`` for the
  cases that pass one) + state read and written (2 x 12 B/pixel).

Usage:
    python benchmarks/bench_tracker.py                 # F3 size, CPU
    python benchmarks/bench_tracker.py --device cuda   # state on the GPU (naive stays numpy)
    python benchmarks/bench_tracker.py --sections 40   # smaller, quicker
    python benchmarks/bench_tracker.py --input-dtype uint8   # one-byte classes and targets
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from segforget.dynamics import ForgettingTracker, _native, _tracker


def copy_bandwidth(nbytes: int = 1 << 28, repeats: int = 5) -> float:
    """Bytes read + written per CPU-second by a large memory copy (best of ``repeats``)."""
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_cpu_time(lambda: np.copyto(dst, src)) for _ in range(repeats))
    return 2 * nbytes / best


def device_copy_bandwidth(device: torch.device, nbytes: int = 1 << 30, repeats: int = 5) -> float:
    """Bytes read + written per wall-clock second by a large copy in ``device`` memory (best of
    ``repeats``, synchronized): the bound for a tracker whose state lives on a GPU."""
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best


def _cpu_time(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _rates(fn, pixels: int, device: torch.device, repeats: int = 1) -> tuple[float, float]:
    """Pixels per second of ``fn``, the best of ``repeats`` calls: per CPU-second of this
    process (process_time) and per wall-clock second. On CPU with one thread the CPU-time rate
    is what an idle machine gives; on GPU only the wall-clock rate is meaningful. The best of
    several calls keeps a call slowed by another process sharing the machine out."""
    best_wall = best_cpu = float("inf")
    for _ in range(max(1, repeats)):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return pixels / (best_cpu if device.type == "cpu" else best_wall), pixels / best_wall


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class NaiveTracker:
    """The reference: four float64 arrays per pixel, numpy fancy indexing."""

    def __init__(self, num_pixels: int) -> None:
        # np.full writes every page now, so the timed updates see no first-touch page faults
        # (the tracker's state is touched the same way, by reset()).
        self.prev_correct = np.full(num_pixels, 0.0)
        self.prev_pred = np.full(num_pixels, -1.0)
        self.forgetting = np.full(num_pixels, 0.0)
        self.switches = np.full(num_pixels, 0.0)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in vars(self).values())

    def update(
        self, pred: np.ndarray, target: np.ndarray, index: np.ndarray, *, drop_negative=False
    ) -> None:
        index = index.reshape(-1)
        pred = pred.reshape(-1)
        target = target.reshape(-1)
        if drop_negative:  # entries without a source pixel (index -1) are not observed
            valid = index >= 0
            index, pred, target = index[valid], pred[valid], target[valid]
        correct = (pred == target).astype(np.float64)
        prev_correct = self.prev_correct[index]
        self.forgetting[index] += (prev_correct == 1) & (correct == 0)
        prev_pred = self.prev_pred[index]
        self.switches[index] += (prev_pred >= 0) & (prev_pred != pred)
        self.prev_correct[index] = correct
        self.prev_pred[index] = pred


def make_batches(rng, sections: int, height: int, width: int, batch: int, count: int, classes):
    batches = []
    for _ in range(count):
        chosen = rng.choice(sections, size=batch, replace=False)
        target = torch.as_tensor(rng.integers(0, classes, size=(batch, height, width)))
        noise = torch.as_tensor(rng.random((batch, height, width)) < 0.2)
        pred = torch.where(noise, (target + 1) % classes, target)
        batches.append((chosen, pred, target))
    return batches


def rotated_index(chosen, height: int, width: int, *, degrees: float = 5.0) -> torch.Tensor:
    """pixel_index (B, H, W) of whole sections rotated about their centre (nearest source
    pixel; -1 where the source falls outside, like a rotation augmentation)."""
    rad = np.deg2rad(degrees)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    src_x = np.rint(np.cos(rad) * (xs - cx) + np.sin(rad) * (ys - cy) + cx).astype(np.int64)
    src_y = np.rint(-np.sin(rad) * (xs - cx) + np.cos(rad) * (ys - cy) + cy).astype(np.int64)
    inside = (src_x >= 0) & (src_x < width) & (src_y >= 0) & (src_y < height)
    ramp = torch.as_tensor(np.where(inside, src_y * width + src_x, -1))
    index = torch.as_tensor(chosen).view(-1, 1, 1) * (height * width) + ramp
    return torch.where(ramp >= 0, index, torch.full_like(index, -1))


def flipped_index(chosen, height: int, width: int, *, dim: int = -2) -> torch.Tensor:
    """pixel_index (B, H, W) of whole sections flipped along ``dim`` (-2: upside down, not a
    contiguous run, so the scatter path runs; -1: horizontal flip, detected as blocks)."""
    ramp = torch.arange(height * width).view(height, width).flip(dim)
    return torch.as_tensor(chosen).view(-1, 1, 1) * (height * width) + ramp


def case_index(chosen, args, flip) -> torch.Tensor:
    """pixel_index (B, H, W) of a case's samples: ``flip`` None (sections in order), -1, -2
    (flipped) or "rotate"."""
    height, width = args.height, args.width
    if flip == "rotate":
        return rotated_index(chosen, height, width)
    if flip is None:
        ramp = torch.arange(height * width).view(height, width)
        return torch.as_tensor(chosen).view(-1, 1, 1) * (height * width) + ramp
    return flipped_index(chosen, height, width, dim=flip)


def bench_tracker(
    batches, num_pixels: int, args, *, flip, windows: bool = True, native: bool, host=False
) -> tuple[float, float, int]:
    """``flip`` None: update_blocks; -1 or -2: update with a flipped pixel_index; "rotate": a
    rotated pixel_index; ``windows``
    False: the scatter path's gather/scatter route even on CPU; ``native``: the fused C kernel
    (else the torch path); ``host``: update with the pixel_index on the host (for a GPU
    tracker; with ``flip`` None, the sections in order)."""
    slack = _tracker._WINDOW_SLACK
    _tracker._WINDOW_SLACK = slack if windows else 0
    try:
        return _bench_tracker(batches, num_pixels, args, flip=flip, native=native, host=host)
    finally:
        _tracker._WINDOW_SLACK = slack


def _bench_tracker(batches, num_pixels: int, args, *, flip, native: bool, host: bool):
    device = torch.device(args.device)
    block = args.height * args.width
    tracker = ForgettingTracker(num_pixels, args.classes, device=device, native=native)
    tracker.reset()  # writes every page of the state once, so timing sees no first-touch faults
    prepared = []
    for chosen, pred, target in batches:
        offsets = [int(c) * block for c in chosen]
        index = None
        if flip is not None or host:
            index = case_index(chosen, args, flip)
            index = index if host else index.to(device)
        if flip == -1:  # the samples themselves are mirrored, like their pixel_index
            pred, target = pred.flip(-1), target.flip(-1)
        prepared.append((pred.to(device), target.to(device), offsets, index))

    def run(items) -> None:
        for pred, target, offsets, index in items:
            if index is not None:
                tracker.update(pred, target, index)
            else:
                tracker.update_blocks(pred, target, offsets)
        _sync(device)

    run(prepared[:2])
    pixels = len(prepared) * args.batch * block
    rates = _rates(lambda: run(prepared), pixels, device, args.repeats)
    return (*rates, tracker.nbytes)


def bench_naive(batches, num_pixels: int, args, *, flip) -> tuple[float, float, int]:
    """The naive reference on the inputs of the tracker case ``flip`` (see case_index)."""
    naive = NaiveTracker(num_pixels)
    numpy_batches = [
        (pred.numpy(), target.numpy(), case_index(chosen, args, flip).numpy())
        for chosen, pred, target in batches
    ]
    drop = flip == "rotate"
    naive.update(*numpy_batches[0], drop_negative=drop)

    def run() -> None:
        for item in numpy_batches:
            naive.update(*item, drop_negative=drop)

    pixels = len(numpy_batches) * args.batch * args.height * args.width
    return (*_rates(run, pixels, torch.device("cpu"), args.repeats), naive.nbytes)


_INDEXED = ("update", "scatter", "  gather", "naive")
"""Cases whose update reads an int64 pixel_index (8 more bytes per pixel)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, default=401)
    parser.add_argument("--height", type=int, default=255)
    parser.add_argument("--width", type=int, default=701)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=25, help="timed batches per method")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed passes over the batches; the best counts"
    )
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--input-dtype",
        default="int64",
        choices=["int64", "uint8"],
        help="dtype of predicted classes and targets (int64: what argmax and datasets give)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1, like numpy's single-threaded reference)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    height, width, block = args.height, args.width, args.height * args.width
    num_pixels = args.sections * block
    rng = np.random.default_rng(args.seed)
    batches = make_batches(
        rng, args.sections, height, width, args.batch, args.batches, args.classes
    )
    print(
        f"pixel space {args.sections} x {height} x {width} = {num_pixels / 1e6:.1f} M pixels; "
        f"batches of {args.batch} sections ({args.batch * block / 1e6:.2f} M pixels); "
        f"{args.input_dtype} inputs; torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads, device {device}"
    )

    dtype = getattr(torch, args.input_dtype)
    batches = [(chosen, pred.to(dtype), target.to(dtype)) for chosen, pred, target in batches]
    kernels = [False]
    if device.type == "cpu":
        if _native.available():
            kernels.insert(0, True)
        else:
            print(f"fused kernel unavailable ({_native.unavailable_reason()}): torch path only")
    # (name, result, flip of its inputs); a None result is a heading
    rows: list[tuple[str, tuple[float, float, int] | None, object]] = []
    for native in kernels:
        kernel = "fused C kernel" if native else "torch path"
        cases = {
            "fast path (update_blocks)": dict(flip=None),
            "update, h-flipped sections": dict(flip=-1),
            "update, upside-down sections": dict(flip=-2),
            "scatter path (rotated 5 deg)": dict(flip="rotate"),
        }
        if not native:  # the gather/scatter route has no fused kernel
            cases["  gather/scatter route"] = dict(flip="rotate", windows=False)
        if device.type != "cpu":  # pixel_index as a data loader yields it: on the host
            cases["update, host index"] = dict(flip=None, host=True)
            cases["update, h-flip, host index"] = dict(flip=-1, host=True)
        print(f"timing the {kernel} ...", flush=True)
        rows.append((f"[{kernel}]", None, None))
        for name, case in cases.items():
            result = bench_tracker(batches, num_pixels, args, native=native, **case)
            rows.append((name, result, case["flip"]))
    print("timing the naive reference ...", flush=True)
    rows.append(("[naive numpy (4 x float64), same inputs]", None, None))
    naive_rates: dict[object, float] = {}
    naive_cases = {
        "naive, sections in order": None,
        "naive, h-flipped sections": -1,
        "naive, upside-down sections": -2,
        "naive, rotated (-1 dropped)": "rotate",
    }
    for name, flip in naive_cases.items():
        result = bench_naive(batches, num_pixels, args, flip=flip)
        naive_rates[flip] = result[0]
        rows.append((name, result, flip))
    fastest_naive = max(naive_rates.values())

    input_bytes = 2 * torch.empty((), dtype=dtype).element_size()
    bandwidth = copy_bandwidth()
    print(
        f"memory copy bandwidth: {bandwidth / 1e9:.2f} GB/s "
        "(read + write per CPU-second, np.copyto 256 MB)"
    )
    # The tracker's rows are bounded by the memory its state lives in; the naive rows by host
    # memory (numpy).
    tracker_bandwidth = bandwidth
    if device.type != "cpu":
        tracker_bandwidth = device_copy_bandwidth(device)
        print(
            f"{device} copy bandwidth: {tracker_bandwidth / 1e9:.1f} GB/s (read + write per "
            "second, 1 GiB tensor copy): the bound of the tracker rows; naive rows use the host's"
        )
    clock = "CPU-s" if device.type == "cpu" else "s"
    print(
        f"{'method':28s} {'Mpix/' + clock:>11s} {'Mpix/wall-s':>11s} {'x naive':>8s} "
        f"{'x fastest':>9s} {'B/pixel':>8s} {'GB/s moved':>11s} {'of copy bw':>10s}"
    )
    for name, result, flip in rows:
        if result is None:
            print(name)
            continue
        rate, wall_rate, nbytes = result
        per_pixel = nbytes / num_pixels
        indexed = name.startswith(_INDEXED) and "host index" not in name
        read = input_bytes + (8 if indexed else 0)
        traffic = rate * (read + 2 * per_pixel)
        bound = bandwidth if name.startswith("naive") else tracker_bandwidth
        print(
            f"{name:28s} {rate / 1e6:11.1f} {wall_rate / 1e6:11.1f} "
            f"{rate / naive_rates[flip]:8.1f} {rate / fastest_naive:9.1f} "
            f"{per_pixel:8.2f} {traffic / 1e9:11.2f} {traffic / bound:10.1%}"
        )
    print(
        f"(x naive: against the naive reference on the same inputs; x fastest: against its "
        f"fastest row. Bytes moved = inputs read ({input_bytes} B/pixel, + 8 B/pixel of "
        "pixel_index for update and naive) + state read and written (2 x B/pixel); ratios and "
        "bandwidth use the first rate column)"
    )


if __name__ == "__main__":
    main()
