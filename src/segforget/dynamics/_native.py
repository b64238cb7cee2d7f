"""Optional fused CPU kernel of the observation step (C, compiled on first use).

The torch path (:func:`segforget.dynamics._kernel.observe_`) makes about 15 passes over a
batch; memory traffic bounds it. ``_observe.c`` does the same step in one pass: read the
inputs and the 12 bytes of state per pixel once, write the state once. It is compiled with the
system's C compiler the first time a tracker needs it (well under a second), cached under
``$SEGFORGET_CACHE`` (default ``$XDG_CACHE_HOME/segforget``, else ``~/.cache/segforget``), and
loaded with ctypes: no Python headers, no build step at install time. Without a compiler, or
with ``SEGFORGET_NATIVE=0``, trackers use the torch path; both give bit-identical state (the
tests run both).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from segforget.io import cache_dir

__all__ = [
    "available",
    "load",
    "unavailable_reason",
    "observe_targets",
    "observe_bytes",
    "observe_codes",
    "index_bounds",
    "scatter_codes",
    "row_runs",
    "observe_rows",
    "block_starts",
]

_SOURCE = "_observe.c"
_FLAGS = ("-O3", "-shared", "-fPIC", "-std=c99")
_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_reason: str | None = None  # why the library is unavailable, once tried
_tried = False


def _fallback_dir() -> Path:
    """A per-user folder under the temporary directory, when the cache is not writable."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"segforget-{user}"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _build(source: bytes, compiler: str, target: Path) -> None:
    """Compile ``source`` into ``target`` atomically (temporary name in the same folder,
    then rename), so concurrent processes never load a half-written library."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        src = Path(work) / _SOURCE
        src.write_bytes(source)
        out = Path(work) / target.name
        attempts = [[], ["-DSEGFORGET_NO_CLONES"]]  # without the AVX2 / AVX-512 clones if they fail
        error = ""
        for extra in attempts:
            command = [compiler, *_FLAGS, *extra, str(src), "-o", str(out)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if done.returncode == 0:
                os.replace(out, target)
                _remove_stale(target)
                return
            error = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            error = error[0]
        raise RuntimeError(f"{compiler} failed: {error}")


def _remove_stale(current: Path) -> None:
    """Delete kernels built from other versions of the source next to ``current`` (one small
    file per version would pile up otherwise). A process that already loaded one keeps its
    mapping; one that needs it again rebuilds it."""
    for old in current.parent.glob("observe-*.so"):
        if old != current:
            try:
                old.unlink()
            except OSError:
                pass  # in use elsewhere, or not ours to delete: harmless


def _declare(library: ctypes.CDLL) -> None:
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    library.segforget_observe_targets.argtypes = [
        i64,
        i64,
        i32,
        ptr,
        i32,
        ptr,
        i32,
        i64,
        i32,
        *([ptr] * 7),
    ]
    library.segforget_observe_targets.restype = i32
    library.segforget_observe_target_runs.argtypes = [i64, ptr, ptr, ptr, i64, i32]
    library.segforget_observe_target_runs.argtypes += [ptr, i32, ptr, i32, i64, i32, *[ptr] * 7]
    library.segforget_observe_target_runs.restype = i32
    library.segforget_observe_bytes.argtypes = [i64, ptr, ptr, ptr, *([ptr] * 7)]
    library.segforget_observe_bytes.restype = i32
    library.segforget_index_bounds.argtypes = [i64, i64, ptr, ptr, ptr]
    library.segforget_index_bounds.restype = None
    library.segforget_scatter_codes.argtypes = [i64, i64, ptr, ptr, ptr, i32, ptr, i32, i64, i32]
    library.segforget_scatter_codes.argtypes += [ptr, ptr]
    library.segforget_scatter_codes.restype = None
    library.segforget_scatter_observe.argtypes = [i64, ptr, ptr, ptr, ptr, i64, ptr]
    library.segforget_scatter_observe.argtypes += [ptr, i32, ptr, i32, i64, i32, ptr, ptr]
    library.segforget_scatter_observe.argtypes += [ptr] * 7
    library.segforget_scatter_observe.restype = i32
    library.segforget_observe_codes.argtypes = [i64, ptr, ptr, *([ptr] * 7)]
    library.segforget_observe_codes.restype = i32
    library.segforget_row_runs.argtypes = [i64, i64, ptr, ptr, ptr]
    library.segforget_row_runs.restype = i64
    library.segforget_block_starts.argtypes = [i64, i64, i64, i32, ptr, ptr]
    library.segforget_block_starts.restype = i64
    library.segforget_observe_rows.argtypes = [i64, i64, ptr, ptr, ptr, ptr, ptr, i32, ptr, i32]
    library.segforget_observe_rows.argtypes += [i64, i32, ptr]
    library.segforget_observe_rows.argtypes += [ptr] * 7
    library.segforget_observe_rows.restype = i32


def load() -> ctypes.CDLL | None:
    """The compiled kernel, building it on first use; None if it cannot be built (the reason
    is in :func:`unavailable_reason`; a warning says it once per process)."""
    global _library, _reason, _tried
    with _lock:
        if _tried:
            return _library
        _tried = True
        if os.environ.get("SEGFORGET_NATIVE", "1").strip().lower() in ("0", "false", "no"):
            _reason = "disabled by SEGFORGET_NATIVE=0"
            return None
        compiler = _compiler()
        if compiler is None:
            _reason = "no C compiler found (set CC)"
            return None
        source = resources.files("segforget.dynamics").joinpath(_SOURCE).read_bytes()
        key = hashlib.sha256(
            b"\0".join(
                [source, " ".join(_FLAGS).encode(), platform.machine().encode(), compiler.encode()]
            )
        ).hexdigest()[:16]
        target = cache_dir() / f"observe-{key}.so"
        try:
            if not target.exists():
                try:
                    _build(source, compiler, target)
                except OSError:  # cache not writable (read-only home, a file in the way)
                    target = _fallback_dir() / target.name
                    if not target.exists():
                        _build(source, compiler, target)
            library = ctypes.CDLL(str(target))
            _declare(library)
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            _reason = f"could not build the fused kernel ({error})"
            warnings.warn(
                f"segforget: {_reason}; the tracker uses the slower torch path", stacklevel=2
            )
            return None
        _library = library
        return library


def available() -> bool:
    """Whether the fused kernel is (or can be) loaded."""
    return load() is not None


def unavailable_reason() -> str | None:
    """Why :func:`load` returned None (None when it loaded or was not tried)."""
    return _reason


def _require() -> ctypes.CDLL:
    library = load()
    if library is None:
        raise RuntimeError(f"The fused tracker kernel is unavailable: {_reason}")
    return library


def _state_pointers(state) -> list[int]:
    """Data pointers of the seven core state views, in the kernel's order."""
    names = ("observations", "correct", "forgetting", "switches", "first_learned")
    tensors = [getattr(state, name) for name in names]
    tensors += [state.last_prediction, state.flags]
    return [t.data_ptr() for t in tensors]


def observe_targets(
    state,
    classes: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int,
    mirrored: bool,
) -> None:
    """Apply one observation of the pixels of ``state`` (contiguous CPU views, (N,) each) from
    predicted classes and targets.

    Args:
        state: a :class:`~segforget.dynamics._kernel.CoreState` of views of N pixels.
        classes, target: (..., W) contiguous CPU integer tensors of N entries, uint8 or int64
            (other integer dtypes are converted here); ``mirrored``: each row of W entries
            holds its pixels right to left.
        ignore_index: target value of unobserved pixels (compared as a byte when it fits one,
            like the torch path).
    """
    library = _require()
    inputs = _Inputs.of(classes, target, ignore_index)
    size = inputs.target.numel()
    width = int(inputs.target.shape[-1]) if mirrored else size
    lines = size // width if width else 0
    _check(
        library.segforget_observe_targets(
            lines, width, int(mirrored), *inputs.arguments(), *_state_pointers(state)
        )
    )


def observe_target_runs(
    state,
    runs: list[tuple[int, int, int]],
    classes: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int,
    mirrored: bool,
) -> None:
    """Several block runs of one batch in one call (see :func:`observe_targets`).

    Args:
        state: a :class:`~segforget.dynamics._kernel.CoreState` of whole state tensors; a run's
            state position counts from their first element.
        runs: (first input entry, first state position, entries) per run; the runs' state
            ranges must not overlap.
        classes, target: (B, H, W) contiguous CPU integer tensors, the whole batch.
        ignore_index, mirrored: as in :func:`observe_targets` (``mirrored``: rows of W).
    """
    library = _require()
    inputs = _Inputs.of(classes, target, ignore_index)
    size = inputs.target.numel()
    for start, at, length in runs:
        if start < 0 or length < 0 or start + length > size or at < 0:
            raise ValueError(f"Expected runs inside the batch's {size} entries, got {runs}")
    # bound to names: their memory must outlive the call
    input_at = torch.tensor([r[0] for r in runs], dtype=torch.int64)
    state_at = torch.tensor([r[1] for r in runs], dtype=torch.int64)
    length = torch.tensor([r[2] for r in runs], dtype=torch.int64)
    width = int(inputs.target.shape[-1]) if inputs.target.dim() else 1
    _check(
        library.segforget_observe_target_runs(
            len(runs),
            input_at.data_ptr(),
            state_at.data_ptr(),
            length.data_ptr(),
            width,
            int(mirrored),
            *inputs.arguments(),
            *_state_pointers(state),
        )
    )


def observe_bytes(state, correct: torch.Tensor, classes: torch.Tensor, observed: torch.Tensor):
    """Apply one observation from flat (N,) contiguous ``uint8`` correct (0 where
    unobserved), class and observed (0/1) bytes to the N pixels of ``state``."""
    library = _require()
    inputs = [t.contiguous() for t in (correct, classes, observed)]
    library.segforget_observe_bytes(
        inputs[0].numel(), *(t.data_ptr() for t in inputs), *_state_pointers(state)
    )


def observe_codes(state, code: torch.Tensor, classes: torch.Tensor) -> None:
    """Apply one observation to the N pixels of ``state`` from contiguous (N,) ``uint8``
    window codes (0 not observed, 1 correct, 2 wrong) and classes (see :func:`scatter_codes`)."""
    library = _require()
    library.segforget_observe_codes(
        code.numel(), code.data_ptr(), classes.data_ptr(), *_state_pointers(state)
    )


def index_bounds(index: torch.Tensor) -> tuple[list[int], list[int]]:
    """Smallest and largest nonnegative entry of each row of a contiguous (S, N) int64 CPU
    ``index`` in one pass: two lists of S ints (low = 2**63 - 1 and high = -1 for a row
    without one)."""
    library = _require()
    samples, per_sample = index.shape
    low = torch.empty(samples, dtype=torch.int64)
    high = torch.empty(samples, dtype=torch.int64)
    library.segforget_index_bounds(
        samples, per_sample, index.data_ptr(), low.data_ptr(), high.data_ptr()
    )
    return low.tolist(), high.tolist()


def scatter_codes(
    index: torch.Tensor,
    shift: torch.Tensor,
    classes: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int,
    code: torch.Tensor,
    window_classes: torch.Tensor,
) -> None:
    """Scatter the observed entries of a batch into zeroed dense windows, reducing duplicates:
    per position the code (1 correct, 2 wrong: the largest, so any wrong occurrence makes the
    pixel wrong) and the largest predicted class.

    Args:
        index: (S, N) contiguous int64 pixel of each entry; negative = no pixel.
        shift: (S,) int64 added to sample s's entries to get its window position.
        classes, target: S x N integer entries (any integer dtype; see
            :func:`observe_targets` for how they are compared).
        ignore_index: target value of unobserved entries.
        code, window_classes: (L,) contiguous uint8 windows, zeroed, written in place.
    """
    library = _require()
    inputs = _Inputs.of(classes, target, ignore_index)
    shift = shift.contiguous()  # bound to a name: its memory must outlive the call
    samples, per_sample = index.shape
    library.segforget_scatter_codes(
        samples,
        per_sample,
        index.data_ptr(),
        shift.data_ptr(),
        *inputs.arguments(),
        code.data_ptr(),
        window_classes.data_ptr(),
    )


def scatter_observe(
    state,
    windows: list[tuple[int, int, list[int]]],
    index: torch.Tensor,
    classes: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int,
    scratch: torch.Tensor,
) -> None:
    """One observation of a batch through dense windows, window by window: scatter the
    window's samples into zeroed codes (duplicates reduced as in :func:`scatter_codes`), then
    step the window's state from them while they are in cache.

    Args:
        state: the core state views, pixel p at position p.
        windows: (first pixel, length, samples) per window; every nonnegative entry of a
            window's samples lies in first .. first + length - 1, and no two windows overlap.
        index: (S, N) contiguous int64 pixel of each entry; negative = no pixel.
        classes, target: S x N integer entries (see :func:`observe_targets`).
        ignore_index: target value of unobserved entries.
        scratch: contiguous uint8 of at least 2 x the largest window length.
    """
    library = _require()
    inputs = _Inputs.of(classes, target, ignore_index)
    samples, per_sample = index.shape
    longest = max((length for _, length, _ in windows), default=0)
    if scratch.numel() < 2 * longest or not scratch.is_contiguous():
        raise ValueError(f"Expected a contiguous scratch of >= {2 * longest} bytes")
    members = [b for _, _, group in windows for b in group]
    if sorted(members) != sorted(set(members)) or any(not 0 <= b < samples for b in members):
        raise ValueError(f"Expected each of the {samples} samples in at most one window")
    begin = [0]
    for _, _, group in windows:
        begin.append(begin[-1] + len(group))
    # bound to names: their memory must outlive the call
    first = torch.tensor([w[0] for w in windows], dtype=torch.int64)
    length = torch.tensor([w[1] for w in windows], dtype=torch.int64)
    begin_t = torch.tensor(begin, dtype=torch.int64)
    members_t = torch.tensor(members, dtype=torch.int64)
    library.segforget_scatter_observe(
        len(windows),
        first.data_ptr(),
        length.data_ptr(),
        begin_t.data_ptr(),
        members_t.data_ptr(),
        per_sample,
        index.data_ptr(),
        *inputs.arguments(),
        scratch.data_ptr(),
        scratch.data_ptr() + longest,
        *_state_pointers(state),
    )


def row_runs(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Whether every row of a contiguous (R, W) int64 CPU ``index`` is a contiguous run of the
    pixel space, forwards or backwards (whole sections, flips, crops, shifts): the first pixel
    (R,) int64 and direction (R,) int8 (1 forwards, -1 backwards) of each row, or None as soon
    as one row is not a run."""
    library = _require()
    rows, width = index.shape
    start = torch.empty(rows, dtype=torch.int64)
    direction = torch.empty(rows, dtype=torch.int8)
    found = library.segforget_row_runs(
        rows, width, index.data_ptr(), start.data_ptr(), direction.data_ptr()
    )
    return (start, direction) if found == rows else None


def block_starts(index: torch.Tensor, *, flipped: bool) -> list[int] | None:
    """The first pixel of each sample of a contiguous (S, L, W) int64 CPU ``index`` when every
    sample is one contiguous run of the pixel space, row after row (``flipped``: each row
    mirrored), in one pass that stops at the first mismatch; None otherwise."""
    library = _require()
    samples, lines, width = index.shape
    start = torch.empty(samples, dtype=torch.int64)
    found = library.segforget_block_starts(
        samples, lines, width, int(flipped), index.data_ptr(), start.data_ptr()
    )
    return start.tolist() if found == samples else None


def observe_rows(
    state,
    order: torch.Tensor,
    start: torch.Tensor,
    direction: torch.Tensor,
    classes: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int,
    scratch: torch.Tensor,
) -> None:
    """One observation of R non-overlapping runs of W pixels (see :func:`row_runs`).

    Args:
        state: views of the whole pixel space (pixel p at position p), (P,) each.
        order: (R,) int64 rows by ascending ``start`` (the order the state is walked in).
        start, direction: (R,) from :func:`row_runs`.
        classes, target: R x W integer entries, row r observing the run of row r.
        ignore_index: target value of unobserved pixels.
        scratch: contiguous uint8 CPU buffer of at least 3 x R x W bytes (the staged inputs).
    """
    library = _require()
    inputs = _Inputs.of(classes, target, ignore_index)
    rows = start.numel()
    width = inputs.target.numel() // rows if rows else 0
    if scratch.numel() < 3 * rows * width or scratch.dtype != torch.uint8:
        raise ValueError(f"Expected a uint8 `scratch` of >= {3 * rows * width} bytes")
    order = order.contiguous()  # bound to names: their memory must outlive the call
    rank = torch.empty_like(order)
    rank[order] = torch.arange(rows, dtype=order.dtype)
    _check(
        library.segforget_observe_rows(
            rows,
            width,
            order.data_ptr(),
            rank.data_ptr(),
            start.data_ptr(),
            direction.data_ptr(),
            *inputs.arguments(),
            scratch.data_ptr(),
            *_state_pointers(state),
        )
    )


@dataclass
class _Inputs:
    """Predicted classes and targets as the kernel reads them (contiguous uint8 or int64),
    held here so their memory outlives the call."""

    classes: torch.Tensor
    target: torch.Tensor
    ignore_index: int
    ignore_byte: bool

    @classmethod
    def of(cls, classes: torch.Tensor, target: torch.Tensor, ignore_index: int) -> _Inputs:
        # Targets are compared as bytes when the ignore index fits one (like the torch path).
        ignore_byte = 0 <= ignore_index <= 255
        return cls(
            _kernel_integers(classes, keep_wide=False),
            _kernel_integers(target, keep_wide=not ignore_byte),
            int(ignore_index),
            ignore_byte,
        )

    def arguments(self) -> tuple[int, ...]:
        """The kernel's (classes, class bytes, target, target bytes, ignore, ignore as byte)."""
        return (
            self.classes.data_ptr(),
            self.classes.element_size(),
            self.target.data_ptr(),
            self.target.element_size(),
            self.ignore_index,
            int(self.ignore_byte),
        )


def _check(code: int) -> None:
    if code != 0:  # pragma: no cover - the inputs are normalized by _Inputs
        raise RuntimeError("fused kernel rejected its inputs")


def _kernel_integers(values: torch.Tensor, *, keep_wide: bool) -> torch.Tensor:
    """``values`` as a contiguous uint8 or int64 tensor, as the kernel reads them. Other
    integer dtypes become uint8 (bytes are all the kernel compares), or int64 when the full
    value matters (an ignore_index outside [0, 255])."""
    if values.dtype not in (torch.uint8, torch.int64):
        values = values.to(torch.int64 if keep_wide else torch.uint8)
    return values.contiguous()
