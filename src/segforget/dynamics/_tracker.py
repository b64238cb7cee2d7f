"""The stateful tracker: validates inputs, routes observations to the fast or the scatter path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from segforget.dynamics import _distributed, _native
from segforget.dynamics._kernel import (
    FLAG_LAST_CORRECT,
    FLAG_LEARNED,
    FLAG_SEEN,
    MAX_OBSERVATIONS,
    CoreState,
    Workspace,
    as_uint16,
    derive,
    logit_statistics,
    observe_,
)
from segforget.dynamics._stats import ForgettingStats
from segforget.ops import class_argmax

__all__ = ["ForgettingTracker", "STATE_VERSION"]

STATE_VERSION = 1
"""Version of :meth:`ForgettingTracker.state_dict`; bumped when its layout changes."""

_PLANES_PER_CHUNK = 8  # history grows by 8 byte planes = 64 observations at a time
_CORE = ("observations", "correct", "forgetting", "switches", "first_learned")
_CONFIDENCE = ("prob_mean", "prob_m2", "margin_mean")


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise TypeError(
        f"Expected `{name}` to be a torch.Tensor or numpy array, got {type(value).__name__}"
    )


class ForgettingTracker:
    """Record per-pixel learning dynamics (forgetting, learning and switch events) of a
    segmentation network.

    Shape legend: P pixels in the pixel space, B samples, C classes, H x W sample size.

    Each :meth:`update` call is one observation of every pixel it contains (duplicates in one call
    reduce to one observation: correct only if all occurrences are correct, predicted class = the
    largest, probability and margin = the smallest). Pixels whose target is ``ignore_index`` or
    whose ``pixel_index`` is negative are not observed. See the README, "Semantics".

    State is compact: 12 bytes per pixel for the core statistics (five uint16 counters:
    observations, correct, forgetting, switches, first_learned; one byte for the last predicted
    class; one flags byte: last correct, observed, learned), plus 12 bytes with ``confidence``
    (float32 Welford mean/M2 of the true-class probability, mean margin) and one bit per
    observation with ``history`` (byte planes, grown 64 observations at a time). Counts are exact
    up to 65,535 observations per pixel; an update that would go past raises ``ValueError`` and
    changes nothing. Scratch buffers are kept between updates and are not counted in
    :attr:`nbytes`: about 14 bytes per pixel of the largest run of blocks on the block path (2
    per pixel of an F3 batch of 8 random sections), 2 per pixel of the largest window on the
    CPU scatter path with the fused kernel (0.25 per pixel of an F3 batch of 8 rotated
    sections), 20 per batch pixel there on the torch path, 40 on the gather/scatter route.

    Two update paths, bit-identical results:

    - fast (block) path: each sample is one contiguous run of the pixel space (whole sections,
      no geometric augmentation): :meth:`update_blocks` with the samples' offsets, or
      :meth:`update` on a CPU tracker, which detects such batches with one comparison pass.
      The state is updated through views, with no index tensor.
    - scatter path: arbitrary ``pixel_index`` (flips, crops, rotations, padding). On CPU, when
      the samples' index ranges are compact (at most ``_WINDOW_SLACK`` = 4 window pixels per
      entry), the observations are scattered into dense windows of the pixel space (duplicates
      reduce with ``scatter_reduce`` max) and the windows are updated like blocks. Otherwise,
      and always on GPU (finding the ranges would sync), the gather/scatter route gathers the
      pixels' state, reduces duplicates with ``scatter_reduce`` (min/max, order-independent)
      and scatters one identical new value per pixel. Both are deterministic on CPU and GPU.

    No update makes a host-device round trip on GPU (the overflow check keeps an upper bound of
    the observation count on the host and syncs only when it could pass 65,535). Predicted
    classes and targets are handled as bytes: values must lie in [0, num_classes) (or be
    ``ignore_index``); larger values wrap. On CPU, a ``pixel_index`` >= P raises ``ValueError``;
    on GPU (where checking would sync) such entries are not observed.

    Distributed: under ``torch.distributed`` with more than one process (and
    ``sync_distributed=True``), every update all-gathers the observations of all ranks and
    applies them as one update (duplicates across ranks, e.g. DistributedSampler padding, reduce
    like duplicates within a call), so **every rank** holds the single-process state. All ranks
    must call the same method (``update`` or ``update_blocks``) at each step.

    Args:
        num_pixels: P, size of the pixel space.
        num_classes: C, number of classes (1..256; predicted classes are stored in one byte).
        ignore_index: target value of pixels that are not observed.
        device: where the state lives and updates run.
        confidence: also record confidence (mean true-class probability), variability (its
            population std) and AUM (mean margin); requires logits.
        history: also keep the correctness bit of every observation.
        sync_distributed: when ``torch.distributed`` is initialized with more than one process,
            gather every update from all ranks so each rank holds the state of all observations.
        native: use the fused C kernel for the block and window updates (one pass instead of
            about 15; CPU, without confidence and history). None (default): when it can be
            built (a C compiler is present; ``SEGFORGET_NATIVE=0`` turns it off); True: require
            it (``RuntimeError`` if it cannot be built); False: the torch path. Results are
            bit-identical either way.

    Example:
        >>> tracker = ForgettingTracker(4 * 2 * 3, num_classes=2)
        >>> logits = torch.randn(4, 2, 2, 3)
        >>> target = torch.randint(0, 2, (4, 2, 3))
        >>> pixel_index = torch.arange(24).view(4, 2, 3)
        >>> tracker.update(logits, target, pixel_index)
        >>> int(tracker.compute().observations.sum())
        24
    """

    def __init__(
        self,
        num_pixels: int,
        num_classes: int,
        *,
        ignore_index: int = 255,
        device: str | torch.device = "cpu",
        confidence: bool = False,
        history: bool = False,
        sync_distributed: bool = True,
        native: bool | None = None,
    ) -> None:
        if isinstance(num_pixels, bool) or not isinstance(num_pixels, (int, np.integer)):
            raise TypeError(f"Expected `num_pixels` to be an int, got {type(num_pixels).__name__}")
        if num_pixels < 1:
            raise ValueError(f"Expected `num_pixels` to be >= 1, got {num_pixels}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
            raise TypeError(
                f"Expected `num_classes` to be an int, got {type(num_classes).__name__}"
            )
        if not 1 <= num_classes <= 256:
            raise ValueError(
                f"Expected `num_classes` to be in 1..256 (one byte per predicted class), "
                f"got {num_classes}"
            )
        self.num_pixels = int(num_pixels)
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.device = torch.device(device)
        self.confidence = bool(confidence)
        self.history = bool(history)
        self.sync_distributed = bool(sync_distributed)
        self.native = self._choose_native(native)
        # Pixel i lives at slot i + 1; slots 0 and P + 1 are trash: the scatter path sends
        # unobserved entries and negative indices there (by a clamp) instead of compacting them
        # away, which would need a host-device sync on GPU.
        size = self.num_pixels + 2
        self._pixels = slice(1, self.num_pixels + 1)
        zeros = dict(device=self.device)
        self._state = CoreState(
            observations=torch.zeros(size, dtype=torch.int16, **zeros),
            correct=torch.zeros(size, dtype=torch.int16, **zeros),
            forgetting=torch.zeros(size, dtype=torch.int16, **zeros),
            switches=torch.zeros(size, dtype=torch.int16, **zeros),
            first_learned=torch.zeros(size, dtype=torch.int16, **zeros),
            last_prediction=torch.zeros(size, dtype=torch.uint8, **zeros),
            flags=torch.zeros(size, dtype=torch.uint8, **zeros),
        )
        if self.confidence:
            for name in _CONFIDENCE:
                setattr(self._state, name, torch.zeros(size, dtype=torch.float32, **zeros))
        self._history = torch.zeros((0, size), dtype=torch.uint8, **zeros) if history else None
        self._workspace = Workspace(self.device)
        # On a GPU every torch operation is a kernel launch (~10 us) whatever its size, so an
        # update's cost is its number of operations: blocks go through one gather/scatter over
        # an index built on the device, not one set of operations per run of blocks.
        self._launch_bound = self.device.type != "cpu"
        # Buffers for checks of host-side inputs (a GPU tracker given a CPU pixel_index).
        self._host_workspace = (
            self._workspace if self.device.type == "cpu" else Workspace(torch.device("cpu"))
        )
        # Upper bound on any pixel's observation count, kept on the host so the overflow check
        # needs no sync until the bound could pass MAX_OBSERVATIONS.
        self._max_observations = 0

    def _choose_native(self, native: bool | None) -> bool:
        if native is not None and not isinstance(native, bool):
            raise TypeError(f"Expected `native` to be a bool or None, got {native!r}")
        if native is False:
            return False
        # The fused kernel covers the core state only, on CPU.
        supported = self.device.type == "cpu" and not self.confidence and not self.history
        if native is None:
            return supported and _native.available()
        if not supported:
            raise ValueError(
                "Expected `native=True` only for a CPU tracker without confidence and history, "
                f"got device={self.device}, confidence={self.confidence}, history={self.history}"
            )
        if not _native.available():
            raise RuntimeError(
                f"The fused tracker kernel is unavailable: {_native.unavailable_reason()}; "
                "pass native=None or False to use the torch path"
            )
        return True

    # ------------------------------------------------------------------ properties
    @property
    def nbytes(self) -> int:
        """Bytes held by the tracker's state (all tensors, including history)."""
        total = sum(t.numel() * t.element_size() for t in self._tensors().values())
        return int(total)

    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = {
            name: getattr(self._state, name) for name in (*_CORE, "last_prediction", "flags")
        }
        if self.confidence:
            tensors.update({name: getattr(self._state, name) for name in _CONFIDENCE})
        if self._history is not None:
            tensors["history_bits"] = self._history
        return tensors

    # ------------------------------------------------------------------ input handling
    def _prepare(self, prediction: Any, target: Any) -> _Batch:
        """Validate inputs; (B, H, W) classes and targets on the device, still in their integer
        dtype (:meth:`_bytes` converts them where they are used), prob and margin if recorded.
        """
        prediction = _as_tensor(prediction, "prediction")
        target = _as_tensor(target, "target")
        if target.dim() != 3:
            raise ValueError(
                f"Expected `target` to have shape (B, H, W), got {tuple(target.shape)}"
            )
        if target.dtype.is_floating_point or target.dtype == torch.bool or target.is_complex():
            raise TypeError(f"Expected `target` to hold integer classes, got {target.dtype}")
        if prediction.dim() == 4:
            if not prediction.dtype.is_floating_point:
                raise TypeError(
                    f"Expected `prediction` of shape (B, C, H, W) to hold float logits, "
                    f"got {prediction.dtype}"
                )
            if prediction.shape[1] != self.num_classes:
                raise ValueError(
                    f"Expected `prediction` to have {self.num_classes} channels (num_classes), "
                    f"got {prediction.shape[1]}"
                )
            spatial = (prediction.shape[0], *prediction.shape[2:])
        elif prediction.dim() == 3:
            if prediction.dtype.is_floating_point or prediction.dtype == torch.bool:
                raise TypeError(
                    f"Expected `prediction` of shape (B, H, W) to hold integer classes, "
                    f"got {prediction.dtype}"
                )
            if self.confidence:
                raise ValueError(
                    "Expected `prediction` to be logits (B, C, H, W) because the tracker records "
                    f"confidence, got classes of shape {tuple(prediction.shape)}"
                )
            spatial = tuple(prediction.shape)
        else:
            raise ValueError(
                "Expected `prediction` to have shape (B, C, H, W) (logits) or (B, H, W) "
                f"(classes), got {tuple(prediction.shape)}"
            )
        if tuple(spatial) != tuple(target.shape):
            raise ValueError(
                f"Expected `prediction` and `target` to share (B, H, W), got "
                f"{tuple(prediction.shape)} and {tuple(target.shape)}"
            )
        prediction = prediction.to(self.device, non_blocking=True)
        target = target.to(self.device, non_blocking=True)
        prob = margin = None
        if prediction.dim() == 4:
            if self.confidence:
                prob, margin = logit_statistics(prediction, target)
            # One byte per class (num_classes <= 256), the form the update reads.
            classes = class_argmax(prediction, dtype=torch.uint8)
        else:
            classes = prediction
        return _Batch(classes=classes, target=target, prob=prob, margin=margin)

    def _bytes(
        self, batch: _Batch, rows: slice = slice(None)
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat ``uint8`` correct (0/1, 0 where unobserved), predicted class and observed
        (0/1: target != ignore_index) of the samples ``rows`` of ``batch``, in workspace buffers.

        Classes and targets fit one byte (num_classes <= 256); uint8 arithmetic (and
        comparisons written to uint8) is the fast path of torch's CPU kernels, bool is not.
        """
        if batch.correct is not None:
            converted = (batch.correct, batch.classes, batch.observed)
            return tuple(t[rows].reshape(-1) for t in converted)
        classes, target = batch.classes[rows], batch.target[rows]
        size = target.numel()
        class_byte = self._byte_view(classes, "classes")
        target_byte = self._byte_view(target, "target")
        observed = self._workspace.get("observed", size, torch.uint8)
        correct = self._workspace.get("correct", size, torch.uint8)
        if 0 <= self.ignore_index <= 255:
            torch.ne(target_byte, self.ignore_index, out=observed)
        else:
            observed.copy_(target.reshape(-1) != self.ignore_index)
        torch.eq(class_byte, target_byte, out=correct)
        # On CPU a host-side check is free of syncs and cheaper than the masking pass.
        if self.device.type != "cpu" or not bool(observed.all()):
            correct &= observed
        if batch.mirrored:
            values = (correct, class_byte, observed)
            return tuple(t.view(target.shape).flip(-1).reshape(-1) for t in values)
        return correct, class_byte, observed

    def _byte_view(self, values: torch.Tensor, name: str) -> torch.Tensor:
        """Flat uint8 ``values``: the tensor itself when it already is (read only), else a
        converted copy in workspace buffer ``name``."""
        if values.dtype == torch.uint8 and values.is_contiguous():
            return values.reshape(-1)
        return self._workspace.get(name, values.numel(), torch.uint8).copy_(values.reshape(-1))

    # ------------------------------------------------------------------ update
    def update(self, prediction: Any, target: Any, pixel_index: Any) -> None:
        """Observe one batch: one observation of each pixel it contains.

        Args:
            prediction: (B, C, H, W) float logits or (B, H, W) integer classes in [0, C).
            target: (B, H, W) integer true classes; ``ignore_index`` marks unobserved pixels.
            pixel_index: (B, H, W) integer index of each pixel in [0, P); negative = no pixel.

        On a CPU tracker, batches whose samples are each one contiguous run of the pixel space
        (whole sections, as they are or horizontally flipped) are detected with one comparison
        pass and take the fast block path; on other devices use :meth:`update_blocks` for that.

        Raises:
            ValueError, TypeError: on malformed inputs; ValueError if a pixel would pass 65,535
                observations or an index is >= P.
        """
        pixel_index = _as_tensor(pixel_index, "pixel_index")
        batch = self._prepare(prediction, target)
        shape = tuple(batch.target.shape)
        if tuple(pixel_index.shape) != shape:
            raise ValueError(
                f"Expected `pixel_index` to have the shape of `target` {shape}, "
                f"got {tuple(pixel_index.shape)}"
            )
        if pixel_index.dtype.is_floating_point or pixel_index.dtype == torch.bool:
            raise TypeError(f"Expected `pixel_index` to hold integers, got {pixel_index.dtype}")
        if (
            self._launch_bound
            and pixel_index.device.type == "cpu"
            and not self._distributed()
            and self._host_blocks(batch, pixel_index.to(torch.int64))
        ):
            return
        pixel_index = pixel_index.to(self.device, non_blocking=True).to(torch.int64)
        if not self._distributed() and self.device.type == "cpu":
            offsets = _block_offsets(
                pixel_index, self.num_pixels, self._workspace, native=self.native
            )
            if offsets is not None:
                self._apply_blocks(batch, offsets)
                return
            # Horizontally flipped whole sections (the common augmentation) are blocks too,
            # read right to left (the fused kernel stages mirrored lines in place; the torch
            # path flips the inputs back per run of blocks, as bytes: cheaper to flip).
            offsets = _block_offsets(
                pixel_index, self.num_pixels, self._workspace, flipped=True, native=self.native
            )
            if offsets is not None:
                self._apply_blocks(replace(batch, mirrored=True), offsets)
                return
            # With the fused kernel, rows that are runs of the pixel space (vertical flips,
            # crops, shifts) are updated in place.
            if self.native and self._rows_native(batch, pixel_index):
                return
        if self.native and not self._distributed() and self._scatter_native(batch, pixel_index):
            return
        correct, classes, observed = self._bytes(batch)
        prob, margin = _flatten(batch.prob, batch.margin)
        self._apply_scatter(correct, classes, observed, prob, margin, pixel_index)

    def update_blocks(
        self, prediction: Any, target: Any, offsets: Sequence[int] | torch.Tensor | np.ndarray
    ) -> None:
        """Observe a batch whose sample b covers pixels ``offsets[b] .. offsets[b] + H*W - 1``.

        The fast path: no index tensor, state updated through views. Equivalent to
        ``update(prediction, target, offsets[:, None, None] + arange(H*W).view(H, W))``; samples
        that overlap fall back to the scatter path (duplicates reduce as in :meth:`update`).

        Args:
            prediction: (B, C, H, W) logits or (B, H, W) classes.
            target: (B, H, W) integer classes; ``ignore_index`` marks unobserved pixels.
            offsets: B ints (a sequence or a CPU tensor/array, so reading them needs no sync),
                e.g. ``section * H * W``.

        Raises:
            ValueError: if a block reaches outside [0, P) or ``offsets`` has the wrong length.
        """
        batch = self._prepare(prediction, target)
        if isinstance(offsets, torch.Tensor):
            offsets = offsets.detach().cpu().tolist()
        offsets = [int(o) for o in np.asarray(offsets).reshape(-1).tolist()]
        samples, height, width = batch.target.shape
        if len(offsets) != samples:
            raise ValueError(
                f"Expected `offsets` to hold {samples} values (one per sample), got {len(offsets)}"
            )
        block = height * width
        for offset in offsets:
            if offset < 0 or offset + block > self.num_pixels:
                raise ValueError(
                    f"Expected every block `offsets[b] .. offsets[b] + {block}` inside the pixel "
                    f"space [0, {self.num_pixels}), got offset {offset}"
                )
        if self._distributed():
            # Gather the blocks of all ranks; they stay blocks, so the fast path still applies.
            local = torch.tensor(offsets, dtype=torch.int64, device=self.device)
            flat = [*self._bytes(batch), *_flatten(batch.prob, batch.margin)]
            (gathered_offsets,) = _distributed.all_gather_cat([local])
            gathered = _distributed.all_gather_cat(flat)
            offsets = gathered_offsets.tolist()
            if gathered[0].numel() != len(offsets) * block:
                raise ValueError(
                    f"Expected every rank to update blocks of {height} x {width} pixels, got "
                    "other sizes on some ranks"
                )
            batch = _Batch.of_bytes(
                *(t.view(len(offsets), height, width) if t is not None else None for t in gathered)
            )
        ordered = sorted(offsets)
        if any(b < a + block for a, b in zip(ordered, ordered[1:])):
            index = self._block_index(offsets, (height, width), mirrored=False)
            flat = [*self._bytes(batch), *_flatten(batch.prob, batch.margin)]
            self._scatter(index, *flat, samples=len(offsets))
            return
        self._apply_blocks(batch, offsets)

    def _distributed(self) -> bool:
        return self.sync_distributed and _distributed.world_size() > 1

    def _host_blocks(self, batch: _Batch, pixel_index: torch.Tensor) -> bool:
        """A device tracker given a host-side ``pixel_index`` (as a data loader yields it):
        when its samples are whole blocks (as they are, or mirrored left-right), found on the
        host without a sync, they take the block path and the index never goes to the device.
        False (nothing done) otherwise."""
        for mirrored in (False, True):
            offsets = _block_offsets(
                pixel_index,
                self.num_pixels,
                self._host_workspace,
                flipped=mirrored,
                native=_native.available(),
            )
            if offsets is not None:
                self._apply_blocks(replace(batch, mirrored=mirrored), offsets)
                return True
        return False

    def _block_index(self, offsets: list[int], shape: Sequence[int], mirrored: bool):
        """Flat (B * H * W,) int64 pixel index, on the device, of blocks starting at
        ``offsets`` (``mirrored``: each block read right to left). The offsets travel to the
        device asynchronously; the ramp is built there once per sample shape."""
        ramp = self._workspace.constant(
            ("ramp", tuple(shape), mirrored), lambda: _ramp(shape, mirrored)
        )
        starts = torch.tensor(offsets, dtype=torch.int64).to(self.device, non_blocking=True)
        return (starts.view(-1, 1) + ramp.view(1, -1)).reshape(-1)

    def _reserve(self) -> None:
        """Account for one more observation; grow history; check overflow lazily."""
        if self._history is not None:
            needed = (self._max_observations + 1 + 7) // 8
            if needed > self._history.shape[0]:
                planes = -(-needed // _PLANES_PER_CHUNK) * _PLANES_PER_CHUNK
                grown = torch.zeros(
                    (planes, self.num_pixels + 2), dtype=torch.uint8, device=self.device
                )
                grown[: self._history.shape[0]] = self._history
                self._history = grown

    def _overflow_possible(self) -> bool:
        if self._max_observations < MAX_OBSERVATIONS:
            return False
        # Rare: the host-side bound reached the limit; one sync gives the exact maximum.
        exact = int(as_uint16(self._state.observations[self._pixels]).max())
        self._max_observations = exact
        return exact >= MAX_OBSERVATIONS

    @staticmethod
    def _raise_overflow(count: int) -> None:
        raise ValueError(
            f"Expected at most {MAX_OBSERVATIONS} observations per pixel, got an update that "
            f"would pass it for {count} pixels; save the statistics and start a new tracker"
        )

    def _apply_blocks(self, batch: _Batch, offsets: list[int]) -> None:
        """Block path: sample b covers pixels ``offsets[b] ..`` (non-overlapping); the state is
        updated through views, one run of consecutive blocks at a time."""
        block = batch.classes[0].numel()
        runs = _consecutive_runs(offsets, block)
        if self._launch_bound and len(runs) > 1:
            # The raw inputs as they are (mirrored blocks read through a mirrored index).
            raw = replace(batch, mirrored=False)
            index = self._block_index(offsets, raw.classes.shape[1:], batch.mirrored)
            self._gather_scatter(index, *self._bytes(raw), *_flatten(raw.prob, raw.margin))
            return
        self._observe_views(
            [
                (
                    slice(offset + 1, offset + 1 + rows * block),
                    _LazyBytes(self, batch, slice(start_row, start_row + rows)),
                )
                for start_row, rows, offset in runs
            ]
        )

    def _observe_views(self, parts: list) -> None:
        """Apply one observation to state views: ``parts`` holds (view, inputs) with ``view``
        a slice of the state slots and ``inputs`` the (correct, classes, observed, prob,
        margin) of its pixels (flat, or a :class:`_LazyBytes` that converts when read)."""
        if self._overflow_possible():
            full = 0
            for view, inputs in parts:
                counts = self._state.observations[view]
                seen = _materialize(inputs)[2].to(torch.bool)
                full += int(((counts == -1) & seen).sum())
            if full:
                self._raise_overflow(full)
        self._reserve()
        if self.native:
            if not self._observe_target_runs(parts):
                for view, inputs in parts:
                    self._observe_native(_select(self._state, view), inputs)
            self._max_observations += 1
            return
        for view, inputs in parts:
            # Converted and derived per view, not per batch: its buffers stay in cache.
            correct, classes, observed, prob, margin = _materialize(inputs)
            state = _select(self._state, view)
            if self._history is not None:
                self._record_history_block(state.observations, correct, view)
            # On CPU a host-side check is free of syncs; no ignored pixel allows a leaner kernel.
            all_observed = self.device.type == "cpu" and bool(observed.all())
            ob = derive(
                correct,
                classes,
                observed,
                prob,
                margin,
                workspace=self._workspace,
                all_observed=all_observed,
            )
            observe_(state, ob, scratch=self._scratch(correct.numel()))
        self._max_observations += 1

    def _observe_target_runs(self, parts: list) -> bool:
        """All block runs of one batch straight from its raw classes and targets in one call
        of the fused kernel (one Python round trip per batch, not per run). False (nothing
        done) when the parts are not all such runs."""
        if not parts:
            return False
        batch = getattr(parts[0][1], "batch", None)
        if batch is None or batch.correct is not None:
            return False
        block = batch.classes[0].numel()
        runs = []
        for view, inputs in parts:
            if not isinstance(inputs, _LazyBytes) or inputs.batch is not batch:
                return False
            rows = inputs.rows
            runs.append((rows.start * block, view.start, (rows.stop - rows.start) * block))
        _native.observe_target_runs(
            self._state,
            runs,
            batch.classes,
            batch.target,
            ignore_index=self.ignore_index,
            mirrored=batch.mirrored,
        )
        return True

    def _observe_native(self, state: CoreState, inputs) -> None:
        """One observation of a state view with the fused kernel: straight from the raw
        classes and targets of a block run (no conversion pass), or from derived bytes."""
        if isinstance(inputs, _Codes):
            _native.observe_codes(state, *inputs.windows())
            return
        if isinstance(inputs, _LazyBytes) and inputs.batch.correct is None:
            batch, rows = inputs.batch, inputs.rows
            _native.observe_targets(
                state,
                batch.classes[rows],
                batch.target[rows],
                ignore_index=self.ignore_index,
                mirrored=batch.mirrored,
            )
            return
        correct, classes, observed = _materialize(inputs)[:3]
        _native.observe_bytes(state, correct, classes, observed)

    def _scratch(self, size: int) -> tuple[torch.Tensor, ...]:
        """Scratch buffers of :func:`observe_`: three uint8 and one int16, each (size,)."""
        get = self._workspace.get
        return (
            *(get(f"scratch{i}", size, torch.uint8) for i in range(3)),
            get("wide", size, torch.int16),
        )

    def _record_history_block(
        self, observations: torch.Tensor, correct: torch.Tensor, view: slice
    ) -> None:
        position = as_uint16(observations).to(torch.int64)
        plane = (position >> 3).unsqueeze(0)  # (1, N)
        bit = correct << (position & 7).to(torch.uint8)
        columns = self._history[:, view]  # (K, N) view
        old = columns.gather(0, plane)
        columns.scatter_(0, plane, old | bit.unsqueeze(0))

    def _apply_scatter(self, correct, classes, observed, prob, margin, pixel_index) -> None:
        index = pixel_index.reshape(-1)
        samples = pixel_index.shape[0] if pixel_index.dim() == 3 and index.numel() else 1
        bounds = None
        if index.numel() and self.device.type == "cpu":
            # On GPU this check would sync; there indices >= P land in a trash slot. On CPU the
            # per-sample bounds also serve to find the scatter path's windows.
            bounds = index.view(samples, -1).aminmax(dim=1)
            largest = int(bounds.max.max())
            if largest >= self.num_pixels:
                raise ValueError(
                    f"Expected `pixel_index` values < num_pixels ({self.num_pixels}), got {largest}"
                )
        observed = observed.reshape(-1)
        correct = correct.reshape(-1)
        classes = classes.reshape(-1)
        if prob is not None:
            prob, margin = prob.reshape(-1), margin.reshape(-1)
        if self._distributed():
            keep = observed.to(torch.int64) & ((index >> 63) + 1)  # (x >> 63) + 1 == (x >= 0)
            index = index * keep + (keep - 1)  # unobserved -> -1
            gathered = _distributed.gather_observations(index, correct, classes, prob, margin)
            index, correct, classes, prob, margin = gathered
            observed = ((index >> 63) + 1).to(torch.uint8)
            samples, bounds = 1, None  # ranks may send different sizes
        self._scatter(
            index, correct, classes, observed, prob, margin, samples=samples, bounds=bounds
        )

    def _rows_native(self, batch: _Batch, pixel_index: torch.Tensor) -> bool:
        """Row-run route of the fused kernel: when every row of every sample is a contiguous
        run of the pixel space, forwards or backwards (vertical and horizontal flips, crops,
        shifts of whole sections), and no two runs overlap, each row updates its run in place:
        no scatter, no windows. False (nothing done) otherwise, found with a scan that stops
        at the first row that is not a run."""
        width = pixel_index.shape[-1]
        index = pixel_index.reshape(-1, width) if width else pixel_index.reshape(0, 0)
        if index.numel() == 0 or self._overflow_possible():
            return False
        runs = _native.row_runs(index.contiguous())
        if runs is None:
            return False
        start, direction = runs
        ordered, order = torch.sort(start)
        if int(ordered[0]) < 0 or int(ordered[-1]) + width > self.num_pixels:
            return False  # the scatter path reports or drops such indices
        if ordered.numel() > 1 and int((ordered[1:] - ordered[:-1]).min()) < width:
            return False  # overlapping runs: duplicates, reduced by the scatter path
        self._reserve()
        _native.observe_rows(
            _select(self._state, self._pixels),
            order,
            start,
            direction,
            batch.classes,
            batch.target,
            ignore_index=self.ignore_index,
            scratch=self._workspace.get("row_stage", 3 * index.numel(), torch.uint8),
        )
        self._max_observations += 1
        return True

    def _scatter_native(self, batch: _Batch, pixel_index: torch.Tensor) -> bool:
        """The CPU windows route with the fused kernel, straight from the raw classes and
        targets: index bounds in one pass, observations scattered into dense windows (codes
        and classes, duplicates reduced), windows updated like blocks. False (nothing done)
        when the windows would be too large; the caller then takes the torch scatter path.
        """
        samples = pixel_index.shape[0]
        index = pixel_index.reshape(samples, -1)
        if index.numel() == 0:
            return False
        index = index.contiguous()
        low, high = _native.index_bounds(index)
        if max(high) >= self.num_pixels:
            raise ValueError(
                f"Expected `pixel_index` values < num_pixels ({self.num_pixels}), got {max(high)}"
            )
        merged = _merge_spans(low, high)
        if merged.size > _WINDOW_SLACK * index.numel():
            return False
        if not self._overflow_possible():
            # Window by window, scatter then step, while the window's codes are in cache.
            self._reserve()
            longest = max(length for _, length, _ in merged.ranges)
            _native.scatter_observe(
                _select(self._state, self._pixels),
                [
                    (start, length, members)
                    for (start, length, _), members in zip(merged.ranges, merged.members)
                ],
                index,
                batch.classes,
                batch.target,
                ignore_index=self.ignore_index,
                scratch=self._workspace.get("window_scratch", 2 * longest, torch.uint8),
            )
            self._max_observations += 1
            return True
        # Near the observation limit: the windows go through the overflow check first.
        get = self._workspace.get
        code = get("window_code", merged.size, torch.uint8).zero_()
        window_classes = get("window_classes", merged.size, torch.uint8).zero_()
        _native.scatter_codes(
            index,
            merged.shift,
            batch.classes,
            batch.target,
            ignore_index=self.ignore_index,
            code=code,
            window_classes=window_classes,
        )
        self._observe_views(
            [
                (slice(start + 1, start + 1 + length), _Codes(code, window_classes, at, length))
                for start, length, at in merged.ranges
            ]
        )
        return True

    def _scatter(
        self, index, correct, classes, observed, prob, margin, *, samples: int, bounds=None
    ) -> None:
        """Scatter path on flat (N,) inputs (``samples`` equal parts, one per sample;
        ``bounds``: their index minima and maxima when already known).

        On CPU, when the samples' index ranges are compact (:func:`_windows`), the
        observations are scattered into dense windows of the pixel space and the windows are
        updated like blocks. Otherwise (and always on GPU, where finding the ranges would
        sync): gather the entries' state, reduce duplicates, apply the kernel, scatter back.
        """
        if self.device.type == "cpu":
            windows = _windows(index, observed, samples, self._workspace, bounds=bounds)
            if windows is not None:
                self._apply_windows(windows, correct, classes, observed, prob, margin)
                return
        self._gather_scatter(index, correct, classes, observed, prob, margin)

    def _apply_windows(self, windows: _Windows, correct, classes, observed, prob, margin):
        """Reduce duplicates by scattering the observations (3 bytes per entry, not the 12
        bytes of state in seven tensors) into zeroed dense windows, then update each window
        through state views with the block kernel (unobserved pixels keep their state)."""
        size, position = windows.size + 1, windows.position  # slot `size - 1`: trash
        get = self._workspace.get
        # One code per entry: 2 observed and wrong, 1 observed and correct, 0 not observed.
        # Its maximum over a pixel's occurrences says both whether the pixel was observed and
        # whether any occurrence was wrong (zero-filled, so include_self=True adds nothing).
        code = get("occurrence_code", correct.numel(), torch.uint8)
        torch.bitwise_xor(observed, correct, out=code)
        code += observed
        window_code = get("window_code", size, torch.uint8).zero_()
        window_code.scatter_reduce_(0, position, code, "amax")
        seen = torch.clamp(window_code, max=1, out=get("window_seen", size, torch.uint8))
        window_correct = torch.eq(window_code, 1, out=get("window_correct", size, torch.uint8))
        window_classes = get("window_classes", size, torch.uint8).zero_()
        window_classes.scatter_reduce_(0, position, classes, "amax")
        confidence = []
        for name, values in (("prob", prob), ("margin", margin)):
            if values is not None:
                # Scatter the values first, so every observed slot holds one of them and the
                # minimum is over the occurrences only; unobserved slots stay 0 (finite).
                window = get(f"window_{name}", size, torch.float32).zero_()
                window.scatter_(0, position, values)
                confidence.append(window.scatter_reduce_(0, position, values, "amin"))
        prob, margin = confidence or (None, None)
        views = [
            (slice(start + 1, start + 1 + length), slice(offset, offset + length))
            for start, length, offset in windows.ranges
        ]
        inputs = (window_correct, window_classes, seen, prob, margin)
        self._observe_views([(view, _part(inputs, part)) for view, part in views])

    def _gather_scatter(self, index, correct, classes, observed, prob, margin) -> None:
        """General scatter path: gather the entries' state, reduce duplicates, apply the
        kernel, scatter back; gather/scatter_ (torch's fast indexed kernels), no bool masks, no
        sync on GPU."""
        size = index.numel()
        # On CPU a host-side check is free of syncs; no ignored pixel allows a leaner kernel.
        all_observed = self.device.type == "cpu" and bool(observed.all())
        index = self._slots(index, observed, all_observed=all_observed)
        st = self._state
        old = self._gather(index)
        if self._overflow_possible():
            real = (index > 0) & (index <= self.num_pixels)
            full = int(((old.observations == -1) & real).sum())
            if full:
                self._raise_overflow(full)
        self._reserve()
        correct, classes, prob, margin = self._reduce_duplicates(
            index, correct, classes, observed, prob, margin
        )
        if self._history is not None:
            # Trash slots start every update with 0 observations (reset below), so their
            # history writes stay in plane 0.
            position = as_uint16(old.observations).to(torch.int64)
            flat = (position >> 3) * (self.num_pixels + 2) + index
            history = self._history.view(-1)
            bit = correct << (position & 7).to(torch.uint8)
            history.scatter_(0, flat, history.gather(0, flat) | bit)
        ob = derive(
            correct,
            classes,
            observed,
            prob,
            margin,
            workspace=self._workspace,
            all_observed=all_observed,
        )
        increment = observe_(old, ob, scratch=self._scratch(size))
        # Every occurrence of a pixel computed the same new values, so duplicate writes agree
        # and the result is deterministic.
        for name, value in vars(old).items():
            if value is not None:
                getattr(st, name).scatter_(0, index, value)
        if increment is not None:
            # first_learned is read and written only when some pixel is newly learned.
            learned = self._workspace.get("gathered_first_learned", size, torch.int16)
            torch.gather(st.first_learned, 0, index, out=learned)
            learned += increment
            st.first_learned.scatter_(0, index, learned)
        st.observations[:1].zero_()
        st.observations[-1:].zero_()
        self._max_observations += 1

    def _slots(self, index: torch.Tensor, observed: torch.Tensor, *, all_observed: bool):
        """State slot of each entry (N,) int64: pixel + 1; negative indices clamp to trash slot
        0, too large ones to trash slot P + 1, unobserved entries (ignore_index) go to slot 0."""
        slots = self._workspace.get("slots", index.numel(), torch.int64)
        torch.add(index, 1, out=slots).clamp_(0, self.num_pixels + 1)
        if not all_observed:
            # A same-dtype multiply: torch's mixed uint8/int64 one is twice as slow.
            wide = self._workspace.get("observed64", index.numel(), torch.int64)
            slots *= wide.copy_(observed)
        return slots

    def _gather(self, index: torch.Tensor) -> CoreState:
        """Copies (workspace buffers) of the state at slots ``index`` (N,); ``first_learned``
        is left out (None): the kernel reads it only for newly learned pixels."""
        values: dict[str, torch.Tensor | None] = {}
        for name, tensor in vars(self._state).items():
            if tensor is None or name == "first_learned":
                values[name] = None
            else:
                buffer = self._workspace.get(f"gathered_{name}", index.numel(), tensor.dtype)
                values[name] = torch.gather(tensor, 0, index, out=buffer)
        return CoreState(**values)

    def _reduce_duplicates(self, index, correct, classes, observed, prob, margin):
        """Reduce the occurrences of each pixel to one observation: correct only if all are,
        the largest class, the smallest probability and margin; every occurrence gets the
        reduced values (N,).

        The state's own byte slots serve as scratch (their old values are gathered). Each
        reduction first scatters the values themselves, so the slot holds one of them, then
        reduces with ``include_self=True`` (three times faster on CPU than
        ``include_self=False``, same result). min/max are order-independent: deterministic.
        """
        st, size = self._state, index.numel()

        def u8(name: str) -> torch.Tensor:
            return self._workspace.get(name, size, torch.uint8)

        def reduce(slots: torch.Tensor, values: torch.Tensor, how: str, name: str):
            slots.scatter_(0, index, values)
            slots.scatter_reduce_(0, index, values, how)
            out = self._workspace.get(name, size, values.dtype) if name else None
            return torch.gather(slots, 0, index, out=out)

        classes = reduce(st.last_prediction, classes, "amax", "reduced_classes")
        # Observed and wrong anywhere -> wrong; correct = observed and never wrong.
        wrong = torch.bitwise_xor(observed, correct, out=u8("wrong_occurrence"))
        wrong = reduce(st.flags, wrong, "amax", "reduced_wrong")
        correct = torch.gt(observed, wrong, out=u8("reduced_correct"))
        if prob is not None:
            prob = reduce(st.prob_mean, prob, "amin", "")
            margin = reduce(st.margin_mean, margin, "amin", "")
        return correct, classes, prob, margin

    # ------------------------------------------------------------------ results
    def compute(
        self, meta: dict[str, Any] | None = None, *, pixels: slice | None = None
    ) -> ForgettingStats:
        """Derive the per-pixel statistics (numpy arrays of length P) from the state.

        Args:
            meta: free-form JSON-able dict stored with the statistics (e.g. section shape).
            pixels: only the pixels ``start .. stop - 1`` (a slice with step 1, e.g. one
                section ``slice(s * H * W, (s + 1) * H * W)``): arrays of that length, read and
                copied from the device without touching the rest of the state.

        Raises:
            ValueError: ``pixels`` is not a slice of step 1 with 0 <= start <= stop <= P.
        """
        pixels = self._slots_of(pixels)
        st = self._state

        def counts(t: torch.Tensor) -> np.ndarray:
            return as_uint16(t[pixels]).cpu().numpy()

        observations = counts(st.observations)
        correct = counts(st.correct)
        last_prediction = st.last_prediction[pixels].to(torch.int16).cpu().numpy()
        last_prediction[observations == 0] = -1
        first_learned = counts(st.first_learned)
        first_learned[correct == 0] = -1
        confidence = variability = aum = None
        if self.confidence:
            observed = observations > 0
            nan = np.float32("nan")
            confidence = np.where(observed, st.prob_mean[pixels].cpu().numpy(), nan)
            m2 = np.maximum(st.prob_m2[pixels].cpu().numpy(), 0)
            variability = np.where(observed, np.sqrt(m2 / np.maximum(observations, 1)), nan).astype(
                np.float32
            )
            aum = np.where(observed, st.margin_mean[pixels].cpu().numpy(), nan)
        history = None
        if self._history is not None:
            # The tracker grows history by a host-side bound; keep the planes that hold bits.
            planes = -(-int(observations.max(initial=0)) // 8)
            history = self._history[:planes, pixels].cpu().numpy()
        return ForgettingStats(
            observations=observations,
            correct=correct,
            forgetting_events=counts(st.forgetting),
            switch_events=counts(st.switches),
            first_learned=first_learned,
            last_correct=(st.flags[pixels] & FLAG_LAST_CORRECT).to(torch.bool).cpu().numpy(),
            last_prediction=last_prediction,
            confidence=confidence,
            variability=variability,
            aum=aum,
            history=history,
            meta=dict(meta or {}),
        )

    def _slots_of(self, pixels: slice | None) -> slice:
        """The state slots of the pixel range ``pixels`` (None: all pixels)."""
        if pixels is None:
            return self._pixels
        if not isinstance(pixels, slice) or pixels.step not in (None, 1):
            raise ValueError(
                f"Expected `pixels` to be a slice start:stop of step 1, got {pixels!r}"
            )
        start = 0 if pixels.start is None else pixels.start
        stop = self.num_pixels if pixels.stop is None else pixels.stop
        integers = all(isinstance(v, (int, np.integer)) for v in (start, stop))
        if not integers or not 0 <= start <= stop <= self.num_pixels:
            raise ValueError(
                f"Expected `pixels` to be a range start <= stop within [0, {self.num_pixels}], "
                f"got {pixels!r}"
            )
        return slice(int(start) + 1, int(stop) + 1)

    def summary(self) -> dict[str, int | float]:
        """Shares of the observed pixels, reduced where the state lives (one transfer of five
        numbers instead of :meth:`compute`'s arrays; what training logs every epoch).

        Returns:
            ``observed_pixels`` (pixels observed at least once) and, when it is not 0,
            ``forgotten_fraction`` (forgotten at least once), ``mean_forgetting_events``,
            ``never_learned_fraction`` (never correct) and ``correct_fraction`` (last
            observation correct), each over the observed pixels.
        """
        st, pixels = self._state, self._pixels
        flags = st.flags[pixels]
        seen_and_learned = torch.bitwise_and(flags, FLAG_SEEN | FLAG_LEARNED)
        counts = [
            torch.count_nonzero(st.observations[pixels]),  # a uint16 pattern is 0 only for 0
            torch.count_nonzero(st.forgetting[pixels]),
            torch.count_nonzero(seen_and_learned == FLAG_SEEN),  # observed, never correct
            torch.count_nonzero(torch.bitwise_and(flags, FLAG_LAST_CORRECT)),  # implies seen
        ]
        count, forgotten, never_learned, last_correct = torch.stack(counts).tolist()
        events = _uint16_total(st.forgetting[pixels])
        if count == 0:
            return {"observed_pixels": 0}
        return {
            "observed_pixels": count,
            "forgotten_fraction": forgotten / count,
            "mean_forgetting_events": events / count,
            "never_learned_fraction": never_learned / count,
            "correct_fraction": last_correct / count,
        }

    def reset(self) -> None:
        """Forget all observations (state back to zeros, history emptied)."""
        for name, tensor in self._tensors().items():
            if name != "history_bits":
                tensor.zero_()
        if self._history is not None:
            self._history = self._history.new_zeros((0, self.num_pixels + 2))
        self._max_observations = 0

    # ------------------------------------------------------------------ checkpointing
    def _config(self) -> dict[str, Any]:
        return {
            "num_pixels": self.num_pixels,
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "confidence": self.confidence,
            "history": self.history,
        }

    def state_dict(self) -> dict[str, Any]:
        """Tensors (on the tracker's device) and plain values; loads with
        ``torch.load(weights_only=True)``. Counters are int16 holding uint16 bit patterns."""
        state: dict[str, Any] = {"version": STATE_VERSION, **self._config()}
        state["max_observations"] = self._max_observations
        for name, tensor in self._tensors().items():
            state[name] = tensor[..., self._pixels].clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`.

        Raises:
            ValueError: if the state is from another version or a tracker of another
                configuration.
        """
        if not isinstance(state, dict):
            raise TypeError(
                f"Expected `state` to be a dict from state_dict(), got {type(state).__name__}"
            )
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(
                f"Expected `state` of tracker state version {STATE_VERSION}, got {version!r}"
            )
        config = self._config()
        got = {k: state.get(k) for k in config}
        if got != config:
            raise ValueError(
                f"Expected `state` of a tracker with {config}, got {got}; build the tracker with "
                "the same options"
            )
        p = self.num_pixels
        tensors = self._tensors()
        for name in tensors:
            if name not in state or not isinstance(state[name], torch.Tensor):
                raise ValueError(f"Expected `state` to hold tensor {name!r}, got none")
        for name, tensor in tensors.items():
            value = state[name]
            if name == "history_bits":
                if value.dim() != 2 or value.shape[1] != p or value.dtype != torch.uint8:
                    raise ValueError(
                        f"Expected `state['history_bits']` of shape (K, {p}) and dtype uint8, "
                        f"got {tuple(value.shape)} {value.dtype}"
                    )
                history = torch.zeros(
                    (value.shape[0], p + 2), dtype=torch.uint8, device=self.device
                )
                history[:, self._pixels] = value
                self._history = history
                continue
            if tuple(value.shape) != (p,) or value.dtype != tensor.dtype:
                raise ValueError(
                    f"Expected `state[{name!r}]` of shape ({p},) and dtype {tensor.dtype}, got "
                    f"{tuple(value.shape)} {value.dtype}"
                )
            tensor.zero_()
            tensor[self._pixels] = value
        self._max_observations = int(state["max_observations"])

    def __repr__(self) -> str:
        return (
            f"ForgettingTracker(num_pixels={self.num_pixels}, num_classes={self.num_classes}, "
            f"ignore_index={self.ignore_index}, device='{self.device}', "
            f"confidence={self.confidence}, history={self.history}, native={self.native})"
        )


@dataclass
class _Batch:
    """One update's validated inputs on the tracker's device, each (B, H, W).

    Either raw (``classes`` and ``target`` integer tensors, converted to bytes by
    :meth:`ForgettingTracker._bytes` where used) or already bytes (``correct``, ``classes``,
    ``observed`` uint8; ``target`` None), e.g. after a distributed gather. ``mirrored`` (raw
    batches only): the samples are mirrored left-right and :meth:`ForgettingTracker._bytes`
    flips them back.
    """

    classes: torch.Tensor
    target: torch.Tensor | None
    prob: torch.Tensor | None = None
    margin: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    observed: torch.Tensor | None = None
    mirrored: bool = False

    @classmethod
    def of_bytes(cls, correct, classes, observed, prob, margin) -> _Batch:
        return cls(classes, None, prob, margin, correct=correct, observed=observed)


@dataclass
class _LazyBytes:
    """The samples ``rows`` of a batch, converted to bytes only when read (per block run, so
    the converted bytes are still in cache when the kernel reads them)."""

    tracker: ForgettingTracker
    batch: _Batch
    rows: slice

    def read(self) -> tuple[torch.Tensor | None, ...]:
        correct, classes, observed = self.tracker._bytes(self.batch, self.rows)
        confidence = [self.batch.prob, self.batch.margin]
        confidence = [t[self.rows] if t is not None else None for t in confidence]
        if self.batch.mirrored:
            confidence = [t.flip(-1) if t is not None else None for t in confidence]
        prob, margin = _flatten(*confidence)
        return correct, classes, observed, prob, margin


@dataclass
class _Codes:
    """Pixels ``at .. at + length - 1`` of dense windows filled by the fused scatter: code
    (0 not observed, 1 correct, 2 wrong) and predicted class, each (L,) uint8."""

    code: torch.Tensor
    classes: torch.Tensor
    at: int
    length: int

    def windows(self) -> tuple[torch.Tensor, torch.Tensor]:
        part = slice(self.at, self.at + self.length)
        return self.code[part], self.classes[part]

    def read(self) -> tuple[torch.Tensor | None, ...]:
        code, classes = self.windows()
        return code.eq(1).to(torch.uint8), classes, code.clamp(max=1), None, None


def _materialize(inputs) -> tuple[torch.Tensor | None, ...]:
    return inputs.read() if isinstance(inputs, (_LazyBytes, _Codes)) else inputs


def _part(tensors, part: slice) -> tuple[torch.Tensor | None, ...]:
    return tuple(t[part] if t is not None else None for t in tensors)


@dataclass
class _Windows:
    """Dense windows of the pixel space that hold every observed entry of an update.

    Attributes:
        position: (N,) int64 position of each entry in the concatenated windows; ``size`` (a
            trash position) for entries that observe nothing.
        ranges: (first pixel, length, position of the first pixel) of each window.
        size: total length of the windows.
    """

    position: torch.Tensor
    ranges: list[tuple[int, int, int]]
    size: int


_WINDOW_SLACK = 4
"""The CPU scatter path updates dense windows when they hold at most this many pixels per
entry of the update (each window pixel costs about a quarter of a gathered entry)."""


def _windows(
    index: torch.Tensor,
    observed: torch.Tensor,
    samples: int,
    workspace: Workspace,
    *,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> _Windows | None:
    """Merged index ranges of the samples (CPU; reads values on the host), or None when they
    hold more than ``_WINDOW_SLACK`` pixels per entry (e.g. entries spread over the whole pixel
    space): the gather/scatter path is then cheaper.

    Args:
        index: (N,) int64 pixel of each entry, < P; negative = no pixel.
        observed: (N,) uint8 0/1.
        samples: the entries are this many equal parts (samples); each part's range is one
            window before merging.
        bounds: (samples,) minimum and maximum index of each part, if already computed.
    """
    size = index.numel()
    if size == 0 or _WINDOW_SLACK <= 0:
        return None
    if size % samples:
        samples, bounds = 1, None
    rows = index.view(samples, -1)
    low, high = rows.aminmax(dim=1) if bounds is None else bounds
    invalid = None
    if int(low.min()) < 0 or not bool(observed.all()):
        # Negative indices and unobserved entries neither widen a window nor land in one.
        valid = torch.ge(index, 0, out=workspace.get("valid", size, torch.uint8))
        valid &= observed
        invalid = (valid ^ 1).view(torch.bool)
        masked = rows.masked_fill(invalid.view(samples, -1), index.max() + 1)
        low = masked.amin(dim=1)
        high = masked.masked_fill_(invalid.view(samples, -1), -1).amax(dim=1)
    merged = _merge_spans(low.tolist(), high.tolist())
    if merged.size > _WINDOW_SLACK * size:
        return None
    position = workspace.get("slots", size, torch.int64).view(samples, -1)
    torch.add(rows, merged.shift.view(-1, 1), out=position)
    position = position.view(-1)
    if invalid is not None:
        position.masked_fill_(invalid, merged.size)
    return _Windows(position, merged.ranges, merged.size)


@dataclass
class _Spans:
    """Merged index ranges of the samples of an update.

    Attributes:
        ranges: (first pixel, length, position of the first pixel in the windows) per window.
        size: total length of the windows.
        shift: (S,) int64, added to a sample's pixel index to get its window position.
        members: the samples of each window (samples without an entry in none).
    """

    ranges: list[tuple[int, int, int]]
    size: int
    shift: torch.Tensor
    members: list[list[int]]


def _merge_spans(low: list[int], high: list[int]) -> _Spans:
    """Merge the samples' closed index ranges [low, high] (empty when low > high) into
    disjoint windows laid out one after the other."""
    samples = len(low)
    spans = sorted((lo, hi + 1, b) for b, (lo, hi) in enumerate(zip(low, high)) if lo <= hi)
    ranges: list[list[int]] = []  # merged [first, end, position]
    owner = [0] * samples  # merged range of each sample
    members: list[list[int]] = []  # samples of each merged range
    total = 0
    for lo, hi, b in spans:
        if ranges and lo <= ranges[-1][1]:
            if hi > ranges[-1][1]:
                total += hi - ranges[-1][1]
                ranges[-1][1] = hi
        else:
            ranges.append([lo, hi, total])
            members.append([])
            total += hi - lo
        owner[b] = len(ranges) - 1
        members[owner[b]].append(b)
    # Entry position = pixel - window's first pixel + window's position.
    shift = [ranges[owner[b]][2] - ranges[owner[b]][0] if ranges else 0 for b in range(samples)]
    return _Spans(
        [(lo, hi - lo, at) for lo, hi, at in ranges],
        total,
        torch.tensor(shift, dtype=torch.int64),
        members,
    )


def _uint16_total(pattern: torch.Tensor) -> int:
    """Exact sum of ``int16`` uint16 patterns read as counts (N,). On CPU with numpy, whose
    integer sums are vectorized (torch's take 15 times longer there)."""
    if pattern.device.type == "cpu":
        return int(pattern.numpy().view(np.uint16).sum(dtype=np.int64))
    return _uint16_total_torch(pattern)


def _uint16_total_torch(pattern: torch.Tensor) -> int:
    """:func:`_uint16_total` with torch ops (any device; what a GPU tracker runs)."""
    return int(as_uint16(pattern).sum(dtype=torch.int64))


def _flatten(*tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    return [t.reshape(-1) if t is not None else None for t in tensors]


def _select(state: CoreState, view: slice) -> CoreState:
    """Views of every state tensor."""
    return CoreState(**{k: (v[view] if v is not None else None) for k, v in vars(state).items()})


def _consecutive_runs(offsets: list[int], block: int) -> list[tuple[int, int, int]]:
    """Group samples whose blocks follow each other in memory: (first row, rows, offset)."""
    runs: list[tuple[int, int, int]] = []
    for row, offset in enumerate(offsets):
        if runs and runs[-1][2] + runs[-1][1] * block == offset:
            first, rows, start = runs[-1]
            runs[-1] = (first, rows + 1, start)
        else:
            runs.append((row, 1, offset))
    return runs


def _block_offsets(
    pixel_index: torch.Tensor,
    num_pixels: int,
    workspace: Workspace,
    *,
    flipped: bool = False,
    native: bool = False,
) -> list[int] | None:
    """Offsets if each sample (B, H, W) is one contiguous, non-overlapping run of the pixel
    space (``flipped``: mirrored left-right), else None. One comparison pass after a cheap
    rejection on three pixels (``native``: the fused kernel's single pass, which stops at the
    first line that differs, so it needs no rejection); CPU only, as reading the result is a
    sync on GPU."""
    batch = pixel_index.shape[0]
    if batch == 0 or pixel_index[0].numel() == 0:
        return None
    width = pixel_index.shape[-1]
    if native:
        found = _native.block_starts(
            pixel_index.reshape(batch, -1, width).contiguous(), flipped=flipped
        )
        block = pixel_index[0].numel()
        return None if found is None else _disjoint_in_range(found, block, num_pixels)
    ramp = workspace.constant(
        ("ramp", tuple(pixel_index.shape[1:]), flipped),
        lambda: _ramp(pixel_index.shape[1:], flipped),
    )
    flat = pixel_index.reshape(batch, -1)
    block = flat.shape[1]
    first = width - 1 if flipped else 0  # where the run's first pixel is
    start = flat[:, first : first + 1]  # (B, 1)
    probe = [0, min(1, block - 1), block - 1]
    if not torch.equal(flat[:, probe] - start, ramp[probe].expand(batch, -1)):
        return None
    offsets = start.reshape(-1).tolist()
    # One sample at a time into a reused buffer (no batch-sized int64 temporary), with
    # numpy: its int64 comparison is vectorized, torch's (CPU) is not.
    shifted = workspace.get("ramp_check", block, torch.int64).numpy()
    expected = ramp.numpy()
    for row, offset in zip(flat.numpy(), offsets):
        if not np.array_equal(np.subtract(row, offset, out=shifted), expected):
            return None
    return _disjoint_in_range(offsets, block, num_pixels)


def _disjoint_in_range(offsets: list[int], block: int, num_pixels: int) -> list[int] | None:
    """``offsets`` when the blocks of ``block`` pixels starting there lie in the pixel space
    and do not overlap, else None."""
    if min(offsets) < 0 or max(offsets) + block > num_pixels:
        return None
    ordered = sorted(offsets)
    if any(b < a + block for a, b in zip(ordered, ordered[1:])):
        return None
    return offsets


def _ramp(shape: Sequence[int], flipped: bool) -> torch.Tensor:
    """Flat (H * W,) int64 position of each pixel of a sample in its run (``flipped``:
    mirrored left-right), built by broadcasting (flipping an int64 tensor is slow on CPU)."""
    *rows, width = shape
    height = int(np.prod(rows, dtype=np.int64))
    columns = torch.arange(width - 1, -1, -1) if flipped else torch.arange(width)
    return (torch.arange(height).view(-1, 1) * width + columns).reshape(-1)
