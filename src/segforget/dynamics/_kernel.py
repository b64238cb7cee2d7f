"""Functional core of the tracker: one observation step on per-pixel state tensors, in place.

Both update paths (contiguous blocks and general scatter) call :func:`observe_` with the same
arguments, so both produce bit-identical state. Counters are ``int16`` tensors that hold
``uint16`` bit patterns: torch has no ``uint16`` arithmetic on CPU, and two's-complement
addition on ``int16`` is exactly ``uint16`` arithmetic modulo 2**16. The tracker guarantees no
counter passes 65,535, so the patterns are always the true counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "MAX_OBSERVATIONS",
    "CoreState",
    "observe_",
    "Workspace",
    "as_uint16",
    "nonzero01",
    "logit_statistics",
]

MAX_OBSERVATIONS = 65535
"""Largest observation count per pixel the compact state holds exactly (uint16)."""


FLAG_LAST_CORRECT, FLAG_SEEN, FLAG_LEARNED = 1, 2, 4
"""Bits of the per-pixel ``flags`` byte."""


@dataclass
class CoreState:
    """Per-pixel state (views or gathered copies), each of shape (N,).

    Attributes:
        observations, correct, forgetting, switches, first_learned: ``int16`` holding uint16
            patterns; ``first_learned`` is the 0-based index of the first correct observation,
            meaningful only where the pixel was learned.
        last_prediction: ``uint8`` class of the last observation.
        flags: ``uint8`` bits: 1 last observation correct, 2 observed, 4 ever correct.
        prob_mean, prob_m2, margin_mean: ``float32`` Welford running mean / sum of squared
            deviations of the true-class probability, running mean of the margin; None unless
            the tracker records confidence.
    """

    observations: torch.Tensor
    correct: torch.Tensor
    forgetting: torch.Tensor
    switches: torch.Tensor
    first_learned: torch.Tensor
    last_prediction: torch.Tensor
    flags: torch.Tensor
    prob_mean: torch.Tensor | None = None
    prob_m2: torch.Tensor | None = None
    margin_mean: torch.Tensor | None = None


def as_uint16(pattern: torch.Tensor) -> torch.Tensor:
    """Read ``int16`` uint16 patterns as ``int32`` counts (N,)."""
    return pattern.to(torch.int32) & 0xFFFF


def nonzero01(values: torch.Tensor) -> torch.Tensor:
    """``uint8`` 0/1: whether each ``uint8`` value is non-zero.

    Written as a clamp because torch's CPU comparison kernels that produce ``bool`` are about
    ten times slower than same-dtype arithmetic on ``uint8``.
    """
    return values.clamp(max=1)


class Workspace:
    """Reusable scratch buffers for :func:`observe_` and input preparation.

    Allocating fresh batch-sized temporaries for every operation makes the allocator return
    memory to the OS and page-fault it back on each update (a third of the CPU time on CPU);
    writing into buffers that live as long as the tracker avoids that. Batch-sized: 7 bytes
    per pixel of the largest update, not per pixel of the pixel space.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._u8 = torch.empty((6, 0), dtype=torch.uint8, device=device)
        self._i16 = torch.empty(0, dtype=torch.int16, device=device)
        # Scatter path only: gathered state (5 int16 + 2 uint8 per entry) and slot indices.
        self._gathered16 = torch.empty((5, 0), dtype=torch.int16, device=device)
        self._gathered8 = torch.empty((2, 0), dtype=torch.uint8, device=device)
        self._index = torch.empty(0, dtype=torch.int64, device=device)

    @property
    def nbytes(self) -> int:
        return (
            self._u8.numel()
            + 2 * self._i16.numel()
            + 2 * self._gathered16.numel()
            + self._gathered8.numel()
            + 8 * self._index.numel()
        )

    def get(self, size: int) -> tuple[torch.Tensor, ...]:
        """Six uint8 buffers and one int16 buffer, each (size,)."""
        if size > self._i16.numel():
            self._u8 = torch.empty((6, size), dtype=torch.uint8, device=self.device)
            self._i16 = torch.empty(size, dtype=torch.int16, device=self.device)
        return (*self._u8[:, :size], self._i16[:size])

    def gathered(self, size: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Slot index buffer (size,) int64, and buffers for a gathered :class:`CoreState`:
        five int16 and two uint8 tensors (size,), in CoreState field order."""
        if size > self._index.numel():
            self._gathered16 = torch.empty((5, size), dtype=torch.int16, device=self.device)
            self._gathered8 = torch.empty((2, size), dtype=torch.uint8, device=self.device)
            self._index = torch.empty(size, dtype=torch.int64, device=self.device)
        buffers = [*self._gathered16[:, :size], *self._gathered8[:, :size]]
        return self._index[:size], buffers


def observe_(
    state: CoreState,
    correct: torch.Tensor,
    prediction: torch.Tensor,
    observed: torch.Tensor,
    prob: torch.Tensor | None = None,
    margin: torch.Tensor | None = None,
    *,
    scratch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    all_observed: bool = False,
) -> None:
    """Apply one observation to every pixel where ``observed`` is 1, in place.

    Only same-dtype arithmetic and bitwise operations on ``uint8``/``int16``, written into the
    given scratch buffers (no ``where``, no comparisons, no temporaries): these are torch's
    fast vectorized CPU kernels and are exact on every device.

    Args:
        state: the pixels' state, each tensor (N,).
        correct: (N,) uint8 0/1 correctness of this observation; 0 where not observed.
        prediction: (N,) uint8 predicted class.
        observed: (N,) uint8 0/1, which pixels this step observes.
        prob, margin: (N,) float32 true-class probability and margin, when recording confidence.
        scratch: two uint8 and one int16 buffer (N,), overwritten.
        all_observed: the caller knows ``observed`` is 1 everywhere (whole sections without
            ignored pixels, the common case); the masking operations are then skipped, which
            gives the same state with fewer passes over memory.
    """
    first, second, wide = scratch
    flags = state.flags
    # Flags bits: 1 last correct, 2 observed before, 4 learned before.
    torch.bitwise_right_shift(flags, 1, out=first)
    first &= observed  # seen before, and observed now
    torch.bitwise_xor(state.last_prediction, prediction, out=second)
    second.clamp_(max=1)  # prediction changed (a clamp: bool comparisons are slow on CPU)
    second &= first
    wide.copy_(second)
    state.switches += wide
    torch.bitwise_xor(correct, 1, out=first)
    first &= flags  # bit 0 of flags: last observation correct
    if not all_observed:
        first &= observed
    wide.copy_(first)
    state.forgetting += wide
    torch.bitwise_right_shift(flags, 2, out=second)
    second &= 1  # learned before
    torch.bitwise_xor(second, 1, out=first)
    first &= correct  # newly learned
    # Late in training few pixels are newly learned; on CPU checking costs less than the
    # three passes it saves (on GPU the check would be a sync).
    if first.device.type != "cpu" or bool(first.any()):
        # first_learned is the count before this observation; it stays 0 until learned.
        wide.copy_(first)
        wide *= state.observations
        state.first_learned += wide
    wide.copy_(correct)
    state.correct += wide
    if all_observed:
        state.observations += 1
        state.last_prediction.copy_(prediction)
    else:
        wide.copy_(observed)
        state.observations += wide
        # x += (new - x) * observed: a select in modular uint8 arithmetic.
        torch.sub(prediction, state.last_prediction, out=first)
        first *= observed
        state.last_prediction += first
    second |= correct  # learned after this observation
    second <<= 2
    second |= correct
    second |= FLAG_SEEN
    if all_observed:
        flags.copy_(second)
    else:
        second -= flags
        second *= observed
        flags += second
    if state.prob_mean is not None:
        weight = observed.to(torch.float32)
        count = as_uint16(state.observations).to(torch.float32).clamp_(min=1)
        delta = prob - state.prob_mean
        state.prob_mean.add_(delta * weight / count)
        state.prob_m2.add_(delta * (prob - state.prob_mean) * weight)
        state.margin_mean.add_((margin - state.margin_mean) * weight / count)


def logit_statistics(
    logits: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """True-class probability and margin (true logit minus the largest other logit).

    Args:
        logits: (B, C, H, W) float.
        target: (B, H, W) integer; entries outside [0, C) give meaningless values (the caller
            masks them).

    Returns:
        prob, margin: (B, H, W) float32 each.
    """
    logits = logits.float()
    index = target.clamp(0, logits.shape[1] - 1).unsqueeze(1)  # (B, 1, H, W)
    true_logit = logits.gather(1, index)
    prob = torch.exp(true_logit - torch.logsumexp(logits, dim=1, keepdim=True))
    others = logits.scatter(1, index, float("-inf"))
    margin = true_logit - others.amax(dim=1, keepdim=True)
    # Finite values keep the masked updates exact (0 * inf is NaN); with one class the margin
    # is +inf, stored as the largest float32.
    margin = torch.nan_to_num(margin)
    return prob.squeeze(1), margin.squeeze(1)
