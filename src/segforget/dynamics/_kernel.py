"""Functional core of the tracker: one observation step on per-pixel state tensors, in place.

Both update paths (contiguous blocks and general scatter) call :func:`observe_` with the same
arguments, so both produce bit-identical state. Counters are ``int16`` tensors that hold
``uint16`` bit patterns: torch has no ``uint16`` arithmetic on CPU, and two's-complement
addition on ``int16`` is exactly ``uint16`` arithmetic modulo 2**16. The tracker guarantees no
counter passes 65,535, so the patterns are always the true counts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch

__all__ = [
    "MAX_OBSERVATIONS",
    "CoreState",
    "Observation",
    "observe_",
    "derive",
    "Workspace",
    "as_uint16",
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
    first_learned: torch.Tensor | None
    last_prediction: torch.Tensor
    flags: torch.Tensor
    prob_mean: torch.Tensor | None = None
    prob_m2: torch.Tensor | None = None
    margin_mean: torch.Tensor | None = None


def as_uint16(pattern: torch.Tensor) -> torch.Tensor:
    """Read ``int16`` uint16 patterns as ``int32`` counts (N,)."""
    return pattern.to(torch.int32) & 0xFFFF


class Workspace:
    """Reusable, named scratch buffers for one update (inputs, derived values, gathered state).

    Allocating fresh batch-sized temporaries for every operation makes the allocator return
    memory to the OS and page-fault it back on each update (a third of the CPU time on CPU);
    writing into buffers that live as long as the tracker avoids that. Each name is one buffer,
    grown when a larger update needs it; an update never hands out one name for two purposes.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._buffers: dict[str, torch.Tensor] = {}
        self._constants: dict[Hashable, torch.Tensor] = {}

    @property
    def nbytes(self) -> int:
        tensors = [*self._buffers.values(), *self._constants.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def constant(self, key: Hashable, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The tensor ``make()`` on this device, built once per ``key`` (e.g. a sample shape)."""
        if key not in self._constants:
            self._constants[key] = make().to(self.device)
        return self._constants[key]

    def get(self, name: str, size: int, dtype: torch.dtype) -> torch.Tensor:
        """Buffer ``name`` of shape (size,) and the given dtype (contents undefined)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.numel() < size or buffer.dtype != dtype:
            buffer = torch.empty(size, dtype=dtype, device=self.device)
            self._buffers[name] = buffer
        return buffer[:size]


@dataclass
class Observation:
    """One update's per-entry inputs and the byte-sized values derived from them, each (N,).

    Derived (:func:`derive`) per state view the kernel updates (a run of blocks, a window),
    so the view's buffers are still in cache when the kernel reads them; every field is an
    elementwise function of the inputs, precomputed so the kernel needs fewer passes.

    Attributes:
        correct: ``uint8`` 0/1, correct and observed.
        classes: ``uint8`` predicted class.
        observed: ``uint8`` 0/1.
        all_observed: the caller knows ``observed`` is 1 everywhere (then the ``None`` fields
            below are not needed: the kernel skips its masking passes).
        wrong: ``uint8`` 0/1, observed and not correct.
        correct4: ``uint8`` 4 * correct (compared with the ``FLAG_LEARNED`` bit).
        new_bits: ``uint8`` flag bits this observation sets: 7 if correct, 2 if wrong, 0 if
            not observed.
        correct16: ``int16`` correct, added to the ``correct`` counter.
        keep: ``uint8`` flag bits kept: ``FLAG_LEARNED`` where observed, all where not.
        class_keep: ``uint8`` 0 where observed, 255 where not (mask of the old class).
        masked_classes: ``uint8`` class where observed, 0 where not.
        observed16: ``int16`` observed, added to the observation counter.
        prob, margin: ``float32`` true-class probability and margin, when recording confidence.
    """

    correct: torch.Tensor
    classes: torch.Tensor
    observed: torch.Tensor
    all_observed: bool
    wrong: torch.Tensor
    correct4: torch.Tensor
    new_bits: torch.Tensor
    correct16: torch.Tensor
    keep: torch.Tensor | None = None
    class_keep: torch.Tensor | None = None
    masked_classes: torch.Tensor | None = None
    observed16: torch.Tensor | None = None
    prob: torch.Tensor | None = None
    margin: torch.Tensor | None = None


def derive(
    correct: torch.Tensor,
    classes: torch.Tensor,
    observed: torch.Tensor,
    prob: torch.Tensor | None = None,
    margin: torch.Tensor | None = None,
    *,
    workspace: Workspace,
    all_observed: bool = False,
) -> Observation:
    """Compute an :class:`Observation` from flat (N,) ``uint8`` inputs, into workspace buffers.

    Args:
        correct: (N,) uint8 0/1, 0 where not observed.
        classes: (N,) uint8 predicted class.
        observed: (N,) uint8 0/1.
        prob, margin: (N,) float32, or None.
        workspace: where the derived values are written.
        all_observed: ``observed`` is known to be 1 everywhere (skips the masks).
    """
    size = correct.numel()

    def u8(name: str) -> torch.Tensor:
        return workspace.get(name, size, torch.uint8)

    def i16(name: str) -> torch.Tensor:
        return workspace.get(name, size, torch.int16)

    # Multiplications rather than shifts: torch's uint8 shifts are slower on CPU.
    wrong = torch.bitwise_xor(observed, correct, out=u8("wrong"))
    correct4 = torch.mul(correct, FLAG_LEARNED, out=u8("correct4"))
    # 7 (last correct, observed, learned) if correct, 2 (observed) if wrong, 0 if unobserved.
    new_bits = torch.mul(correct, FLAG_LAST_CORRECT | FLAG_LEARNED, out=u8("new_bits"))
    if all_observed:
        new_bits += FLAG_SEEN
    else:
        new_bits.add_(observed, alpha=FLAG_SEEN)
    ob = Observation(
        correct=correct,
        classes=classes,
        observed=observed,
        all_observed=all_observed,
        wrong=wrong,
        correct4=correct4,
        new_bits=new_bits,
        correct16=i16("correct16").copy_(correct),
        prob=prob,
        margin=margin,
    )
    if not all_observed:
        # Masks that turn the kernel's writes into selects: unobserved pixels keep their state.
        ob.class_keep = torch.sub(observed, 1, out=u8("class_keep"))  # 0 or 255 (wraps)
        ob.keep = torch.bitwise_or(ob.class_keep, FLAG_LEARNED, out=u8("keep"))
        ob.masked_classes = torch.bitwise_not(ob.class_keep, out=u8("masked_classes"))
        ob.masked_classes &= classes
        ob.observed16 = i16("observed16").copy_(observed)
    return ob


def _add_(counter: torch.Tensor, increment: torch.Tensor, wide: torch.Tensor) -> None:
    """``counter += increment`` for an int16 counter and a uint8 increment; widening into
    ``wide`` first is faster on CPU than torch's mixed-dtype add."""
    wide.copy_(increment)
    counter += wide


def observe_(
    state: CoreState,
    ob: Observation,
    *,
    scratch: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor | None:
    """Apply one observation to every pixel where ``ob.observed`` is 1, in place.

    About 15 passes: same-dtype arithmetic, bitwise operations and comparisons written into
    ``uint8`` / ``int16`` scratch buffers (no ``where``, no ``bool`` tensors, no allocation):
    these are torch's fast vectorized CPU kernels, and exact on every device.

    Args:
        state: the pixels' state, each tensor (N,). ``first_learned`` may be None: the caller
            then applies the returned increment itself (the scatter path gathers that field
            only when some pixel is newly learned).
        ob: the observation of these N pixels.
        scratch: three uint8 and one int16 buffer (N,), overwritten.

    Returns:
        The ``int16`` increment of ``first_learned`` (the observation count of newly learned
        pixels, 0 elsewhere; a scratch view) when ``state.first_learned`` is None, else None.
        None as well on CPU when no pixel is newly learned.
    """
    first, second, learned, wide = scratch
    flags = state.flags
    # Switch: seen before (flags bit 1), observed now, and the predicted class changed.
    torch.bitwise_right_shift(flags, 1, out=second)
    if not ob.all_observed:
        second &= ob.observed
    torch.ne(state.last_prediction, ob.classes, out=first)
    first &= second
    _add_(state.switches, first, wide)
    # Forgetting: last observation correct (flags bit 0) and this one wrong.
    torch.bitwise_and(flags, ob.wrong, out=first)
    _add_(state.forgetting, first, wide)
    state.correct += ob.correct16
    # The learned bit where observed (all bits where not, which new_bits leaves unchanged).
    torch.bitwise_and(flags, FLAG_LEARNED if ob.keep is None else ob.keep, out=learned)
    torch.gt(ob.correct4, learned, out=first)  # newly learned
    increment = None
    # Late in training few pixels are newly learned; on CPU checking costs less than the
    # passes it saves (on GPU the check would be a sync).
    if first.device.type != "cpu" or bool(first.any()):
        # first_learned is the count before this observation; it stays 0 until learned.
        wide.copy_(first)
        wide *= state.observations
        if state.first_learned is None:
            increment = wide
        else:
            state.first_learned += wide
    if ob.all_observed:
        state.observations += 1
        state.last_prediction.copy_(ob.classes)
    else:
        state.observations += ob.observed16
        state.last_prediction &= ob.class_keep
        state.last_prediction |= ob.masked_classes
    torch.bitwise_or(learned, ob.new_bits, out=flags)
    if state.prob_mean is not None:
        _welford_(state, ob)
    return increment


def _welford_(state: CoreState, ob: Observation) -> None:
    """Running mean / M2 of the true-class probability and mean margin, after the counts."""
    weight = ob.observed.to(torch.float32)
    count = as_uint16(state.observations).to(torch.float32).clamp_(min=1)
    delta = ob.prob - state.prob_mean
    state.prob_mean.add_(delta * weight / count)
    state.prob_m2.add_(delta * (ob.prob - state.prob_mean) * weight)
    state.margin_mean.add_((ob.margin - state.margin_mean) * weight / count)


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
