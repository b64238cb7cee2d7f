"""Test helpers shared by the test modules."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from dynamics.reference import FLOAT_FIELDS, INT_FIELDS
from segforget.cli import main


@dataclass
class CliResult:
    """Outcome of one in-process ``segforget`` invocation."""

    code: int
    stdout: str
    stderr: str


def run_cli(args: list[str]) -> CliResult:
    """Run ``segforget ARGS`` in this process and capture exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code=code, stdout=out.getvalue(), stderr=err.getvalue())


def assert_user_error(result: CliResult, *fragments: str) -> None:
    """A user error: exit code 2, one line on stderr containing every fragment, no traceback."""
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


def _gloo_entry(rank, world, port, queue, file_path, func_name, args):  # pragma: no cover
    import importlib.util
    import traceback

    import torch.distributed as dist

    try:
        spec = importlib.util.spec_from_file_location(f"_dist_module_{rank}", file_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
        )
        try:
            queue.put((rank, "ok", getattr(module, func_name)(rank, world, *args)))
        finally:
            dist.destroy_process_group()
    except BaseException:
        queue.put((rank, "error", traceback.format_exc()))


def run_gloo(func, world_size: int = 2, *args, timeout: float = 120.0) -> list:
    """Run ``func(rank, world_size, *args)`` in ``world_size`` spawned processes under gloo.

    ``func`` must be a module-level function of a test file (the child loads that file by path).
    Returns the results ordered by rank; a failure in any rank raises with its traceback.
    """
    import inspect
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    file_path = inspect.getsourcefile(func)
    procs = [
        ctx.Process(
            target=_gloo_entry,
            args=(rank, world_size, port, queue, file_path, func.__name__, args),
        )
        for rank in range(world_size)
    ]
    for proc in procs:
        proc.start()
    results: dict[int, object] = {}
    try:
        for _ in procs:
            rank, status, value = queue.get(timeout=timeout)
            if status != "ok":
                raise RuntimeError(f"rank {rank} failed:\n{value}")
            results[rank] = value
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return [results[rank] for rank in range(world_size)]


#: Metric keys that measure time: they differ between two runs of the same computation.
TIMINGS = frozenset({"time_s", "train_s", "tracking_pass_s"})

#: Every array a ForgettingStats may hold (optional ones are None when not recorded).
STATS_ARRAYS = (*INT_FIELDS, *FLOAT_FIELDS, "history")


def without_timings(value):
    """``value`` (nested dicts and lists) without the keys in :data:`TIMINGS`."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def assert_same_run(expected_dir, actual_dir) -> None:
    """Two run directories hold the same metrics (timings aside), the same dynamics (every
    array of every store, bit for bit) and the same final predictions."""
    import numpy as np

    from segforget.train import load_run

    expected, actual = load_run(expected_dir), load_run(actual_dir)
    assert without_timings(actual.metrics) == without_timings(expected.metrics)
    assert actual.available_stats() == expected.available_stats()
    for key in expected.available_stats():
        a, b = expected.stats(*key), actual.stats(*key)
        assert a.meta == b.meta, key
        for name in STATS_ARRAYS:
            left, right = getattr(a, name), getattr(b, name)
            if left is None:
                assert right is None, (key, name)
            else:
                np.testing.assert_array_equal(left, right, err_msg=f"{key} {name}")
    assert actual.available_predictions() == expected.available_predictions()
    for split, view in expected.available_predictions():
        np.testing.assert_array_equal(
            actual.predictions(split, view), expected.predictions(split, view)
        )


def _interrupt(after: int):
    """A callback that stops a run right after the checkpoint of epoch ``after`` (1-based)."""
    from segforget.train import Callback

    class Interrupt(Callback):
        def on_checkpoint(self, trainer, epoch, path) -> None:
            if epoch + 1 == after:
                raise KeyboardInterrupt

    return Interrupt()


def train_interrupted_and_resumed(config, root, *, after: int):
    """Train ``config`` straight through into ``root/full`` and again into ``root/split``,
    stopped after epoch ``after`` (1-based) and resumed; assert the two runs are the same.

    Returns:
        (full run directory, split run directory).
    """
    import pytest

    from segforget.train import resume, train

    full, split = root / "full", root / "split"
    train(config, full)
    with pytest.raises(KeyboardInterrupt):
        train(config, split, callbacks=[_interrupt(after)])
    assert not (split / "metrics.json").exists()
    resume(split)
    assert_same_run(full, split)
    return full, split


def loop_body_thickness(labels):
    """Loop reference of :func:`segforget.analysis.body_thickness`: per pixel of (N, H, W)
    labels (depth down axis 1), the length of its body (the run of equal labels down its
    trace) and its rows below the body's top."""
    import numpy as np

    thickness = np.zeros(labels.shape, np.int64)
    below = np.zeros(labels.shape, np.int64)
    n, h, w = labels.shape
    for s in range(n):
        for x in range(w):
            top = 0
            for row in range(1, h + 1):
                if row == h or labels[s, row, x] != labels[s, top, x]:
                    thickness[s, top:row, x] = row - top
                    below[s, top:row, x] = np.arange(row - top)
                    top = row
    return thickness, below
