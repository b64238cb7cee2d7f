"""Geometric changes of a training batch that keep every observation on its source pixel.

Shape legend: B batch, C channels, H depth, W lateral.

Both operators map each output pixel to a source position of the same sample: the image is
resampled bilinearly (zero outside the section), ``label`` and ``pixel_index`` take the
nearest source pixel (``ignore_index`` and -1 outside), so the tracker still counts each
prediction against the pixel it came from.

- :func:`rotate_batch`  a rotation about the section's centre.
- :func:`warp_batch`    a vertical bump: the layers under a centre pixel lifted or pressed down,
                        bending back to the unmoved top row (a dome made higher or lower), and
                        in mode ``"stretch"`` back to the unmoved bottom row too (a unit at the
                        base made thicker or thinner); in mode ``"insert"`` only the layers
                        above the centre's unit move, following the unit across the section,
                        so rows of that unit are shown twice (made thicker with its own rows,
                        at its own frequency) or cut out (made thinner); mode ``"grow"``
                        composes inserts until the unit is thicker by the whole shift (a
                        unit grown beyond its own thickness, never made thinner); mode
                        ``"thin"`` cuts the unit's rows above its bottom row (never made
                        thicker).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "WARP_MODES",
    "rotate_batch",
    "warp_batch",
    "warp_displacement",
    "insert_displacement",
    "grow_displacement",
    "thin_displacement",
    "unit_rows",
    "region_centres",
]

#: How :func:`warp_displacement` treats the layers under the centre: moved rigidly, stretched
#: between the centre and the unmoved bottom row, or left in place (rows inserted or cut above;
#: ``"grow"``: inserted until the unit is thicker by the whole shift; ``"thin"``: rows of the
#: unit cut until it is thinner by the whole shift).
WARP_MODES: tuple[str, ...] = ("shift", "stretch", "insert", "grow", "thin")
#: Most clipped inserts one grown unit composes (each adds at least half a row or ends it).
_GROW_STEPS = 32
_BUMP_MODES = WARP_MODES[:2]

#: A warp's shift is at most this share of the centre's depth, so that depth stays monotone
#: along every trace (layers bend, they never fold over): see :func:`warp_displacement`.
_MONOTONE_SHARE = 0.6


def _resample(
    batch: dict[str, Any],
    sources: dict[int, tuple[torch.Tensor, torch.Tensor]],
    ignore_index: int,
) -> dict[str, Any]:
    """Resample the samples named in ``sources`` at their (src_x, src_y) positions.

    Args:
        batch: ``image`` (B, C, H, W), ``label`` (B, H, W), ``pixel_index`` (B, H, W).
        sources: sample -> (src_x, src_y), each (H, W) float64 in pixel units.

    Returns:
        A new dict (other keys shared); samples not in ``sources`` are copied bit for bit.
    """
    if not sources:
        return batch
    image, label, index = batch["image"].clone(), batch["label"].clone(), batch["pixel_index"]
    index = index.clone()
    _, _, height, width = image.shape
    for b, (src_x, src_y) in sources.items():
        grid = torch.stack(
            (2 * src_x / max(width - 1, 1) - 1, 2 * src_y / max(height - 1, 1) - 1), dim=-1
        )[None].to(image.dtype)
        image[b] = F.grid_sample(
            batch["image"][b : b + 1],
            grid,
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )[0]
        near_x, near_y = src_x.round().long(), src_y.round().long()
        inside = (near_x >= 0) & (near_x < width) & (near_y >= 0) & (near_y < height)
        near_x, near_y = near_x.clamp(0, width - 1), near_y.clamp(0, height - 1)
        label[b] = torch.where(
            inside, batch["label"][b][near_y, near_x], torch.full_like(label[b], ignore_index)
        )
        index[b] = torch.where(
            inside, batch["pixel_index"][b][near_y, near_x], torch.full_like(index[b], -1)
        )
    out = dict(batch)
    out.update(image=image, label=label, pixel_index=index)
    return out


def rotate_batch(
    batch: dict[str, Any],
    *,
    degrees: float,
    p: float | torch.Tensor,
    generator: torch.Generator,
    ignore_index: int = 255,
) -> dict[str, Any]:
    """Rotate each sample by an angle uniform in [-degrees, degrees] with probability ``p``.

    ``p`` is one probability for all samples or a (B,) tensor of per-sample probabilities;
    the random draws are the same either way (two per sample).

    The image is resampled bilinearly (zero outside), ``label`` and ``pixel_index`` with the
    nearest source pixel (``ignore_index`` and -1 outside), so observations stay on their
    source pixels. Samples drawn not to rotate are returned bit for bit.

    Args:
        batch: ``image`` (B, C, H, W), ``label`` (B, H, W), ``pixel_index`` (B, H, W).

    Returns:
        A new dict with rotated ``image``, ``label``, ``pixel_index`` (other keys shared).
    """
    size, _, height, width = batch["image"].shape
    draw = torch.rand((2, size), generator=generator)
    p = torch.as_tensor(p, dtype=draw.dtype)
    angles = (draw[0] * 2 - 1) * degrees * (draw[1] < p)
    ys = torch.arange(height, dtype=torch.float64)[:, None] - (height - 1) / 2
    xs = torch.arange(width, dtype=torch.float64)[None, :] - (width - 1) / 2
    sources = {}
    for b in torch.nonzero(angles).flatten().tolist():
        rad = float(angles[b]) * np.pi / 180.0
        cos, sin = np.cos(rad), np.sin(rad)
        src_x = cos * xs + sin * ys + (width - 1) / 2  # (H, W)
        src_y = -sin * xs + cos * ys + (height - 1) / 2
        sources[b] = (src_x, src_y)
    return _resample(batch, sources, ignore_index)


def warp_displacement(
    height: int,
    width: int,
    *,
    shift: float,
    row: int,
    column: int,
    spread: float,
    mode: str = "shift",
) -> torch.Tensor:
    """The vertical source offset of :func:`warp_batch` for one sample (modes ``"shift"`` and
    ``"stretch"``; mode ``"insert"`` reads the labels: :func:`insert_displacement`).

    ``offset[y, x] = shift * g(x) * h(y)``: ``g(x) = exp(-(x - column)² / (2 spread²))`` (a
    Gaussian bump across the section) and ``h(y) = sin²(π y / (2 row))`` above ``row`` (0 at
    the top row, rising smoothly to 1). At and below ``row``, mode ``"shift"``: ``h = 1``, the
    layers there move rigidly; mode ``"stretch"``: ``h`` falls linearly to 0 at the bottom row,
    which stays, so the layers between ``row`` and the bottom are stretched (a positive shift:
    a unit at the base shown thicker, its top higher) or squeezed. The output pixel (y, x)
    shows the source pixel (y + offset, x): a positive shift lifts the layers under the centre
    (a higher dome), a negative one presses them down.

    The shift is clipped so that ``y + offset`` increases along every trace (layers bend,
    they never fold over): to ``0.6 * row`` in size in mode ``"shift"``; to
    ``[-0.6 * row, 0.6 * (height - 1 - row)]`` in mode ``"stretch"``.

    Returns:
        (H, W) float64.
    """
    if mode not in _BUMP_MODES:
        raise ValueError(f"Expected `mode` to be one of {list(_BUMP_MODES)}, got {mode!r}")
    low, high = -_MONOTONE_SHARE * row, _MONOTONE_SHARE * row
    if mode == "stretch":
        high = _MONOTONE_SHARE * (height - 1 - row)
    shift = max(low, min(high, float(shift)))
    ys = torch.arange(height, dtype=torch.float64)
    above = _ramp(ys, torch.tensor(float(row), dtype=torch.float64))
    if mode == "stretch":
        below = (height - 1 - ys) / max(height - 1 - row, 1)
    else:
        below = torch.ones_like(ys)
    down = torch.where(ys >= row, below, above)
    return shift * down[:, None] * _across(width, column, spread)[None, :]


def _across(width: int, column: int, spread: float) -> torch.Tensor:
    """(W,) float64: the bump's Gaussian across the section, 1 at ``column``."""
    xs = torch.arange(width, dtype=torch.float64)
    return torch.exp(-((xs - column) ** 2) / (2 * max(spread, 1e-6) ** 2))


def _ramp(ys: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """sin²(π y / (2 row)): 0 at the top row, 1 at ``row``; (H,) for a scalar ``rows``, (H, W)
    for (W,) ``rows``."""
    if rows.dim() == 0:
        return torch.sin(math.pi * ys / (2 * rows.clamp(min=1))) ** 2
    return torch.sin(math.pi * ys[:, None] / (2 * rows.clamp(min=1)[None, :])) ** 2


def _unit_runs(
    labels: torch.Tensor, row: int, column: int
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """The unit of pixel (row, column) on every trace: see :func:`unit_rows`.

    Returns:
        ``tops`` (W,) int64, the first row of the unit's run on each column, and ``lengths``
        (W,) its rows (0 on columns without a run of the label); the centre's ``run_top`` and
        ``run_length`` on ``column``.
    """
    height, width = labels.shape
    unit = labels == labels[row, column]
    starts = unit.clone()
    starts[1:] &= ~unit[:-1]  # (H, W): the first row of every run of the label
    ys = torch.arange(height)
    run_top = int(ys[: row + 1][starts[: row + 1, column]].max())
    # Run length from each row down: the rows of the label from there to its run's end.
    length = torch.zeros((height + 1, width), dtype=torch.long)
    for y in range(height - 1, -1, -1):
        length[y] = torch.where(unit[y], length[y + 1] + 1, 0)
    distance = torch.where(starts, (ys[:, None] - run_top).abs(), height + 1)
    tops = distance.argmin(dim=0)  # (W,)
    lengths = torch.where(starts.any(dim=0), length[tops, torch.arange(width)], 0)
    return tops, lengths, run_top, int(length[run_top, column])


def unit_rows(labels: torch.Tensor, row: int, column: int) -> tuple[torch.Tensor, ...]:
    """Where the unit of pixel (row, column) lies on every trace, at the centre's depth in it.

    The unit is the unbroken vertical run of the centre's label that holds the centre; on
    each other column, the run of that label whose top is nearest in depth to the centre's
    run top. On every column its row is that top plus the centre's depth below its own top,
    at least a third of the unit's thickness on the centre's column (the rows just under a
    unit's top hold its top boundary's reflection).

    Args:
        labels: (H, W) one section's labels, depth down.

    Returns:
        ``rows`` (W,) int64, the row at the centre's depth in the unit; ``below`` (W,) the
        unit's rows from there down (that row included) and ``above`` (W,) its rows above
        it; both are 0 on columns without such a run or where it is too thin to reach that
        row.
    """
    height, _ = labels.shape
    tops, lengths, run_top, run_length = _unit_runs(labels, row, column)
    # At least a third of the way in: the rows just under a unit's top hold the reflection
    # of its top boundary, which repeated would put a boundary inside the unit.
    depth = max(row - run_top, run_length // 3)
    rows = (tops + depth).clamp(max=height - 1)
    reaches = lengths > depth
    below = torch.where(reaches, lengths - depth, 0)
    above = torch.where(reaches, depth, 0)
    return rows, below, above


def insert_displacement(
    labels: torch.Tensor,
    *,
    shift: float,
    row: int,
    column: int,
    spread: float,
) -> torch.Tensor:
    """The vertical source offset of :func:`warp_batch` in mode ``"insert"`` for one sample.

    The unit of the centre pixel is made thicker (``shift`` > 0) or thinner with its own
    rows, following the unit across the section (:func:`unit_rows`: on every column the row
    ``r(x)`` at the centre's depth in the unit): ``offset[y, x] = s(x) * g(x) * sin²(π y /
    (2 r(x)))`` above ``r(x)`` and 0 from it down (those layers stay), ``g`` the bump's
    Gaussian across the section. The output pixel (y, x) shows the source (y + offset, x): a
    lift shows the unit's ``s`` rows from ``r(x)`` down twice, its texture not stretched (the
    layers above lifted), a press cuts out the unit's ``-s`` rows above ``r(x)``.

    ``s(x)`` is ``shift`` clipped per column to ``[-min(0.6 r, above), min(0.6 r, below,
    H - 1 - r)]`` (``above`` / ``below``: the unit's rows above ``r(x)`` and from it down), so
    only rows of the unit are repeated or cut and depth increases along every trace above
    ``r(x)``: labels that increase down every trace still do. Columns without the unit stay.

    Args:
        labels: (H, W) the sample's labels.

    Returns:
        (H, W) float64.
    """
    height, width = labels.shape
    rows, below, above = unit_rows(labels, row, column)
    r = rows.to(torch.float64)
    high = torch.minimum(_MONOTONE_SHARE * r, torch.minimum(below, height - 1 - rows).double())
    low = -torch.minimum(_MONOTONE_SHARE * r, above.double())
    local = torch.maximum(low, torch.minimum(high, torch.full_like(r, float(shift))))
    ys = torch.arange(height, dtype=torch.float64)
    ramp = torch.where(ys[:, None] < r[None, :], _ramp(ys, r), 0.0)
    return ramp * (local * _across(width, column, spread))[None, :]


def grow_displacement(
    labels: torch.Tensor,
    *,
    rows: float,
    row: int,
    column: int,
    spread: float,
) -> torch.Tensor:
    """The vertical source offset of :func:`warp_batch` in mode ``"grow"`` for one sample.

    The unit of pixel (row, column) is made thicker by up to ``rows`` rows (``rows`` <= 0
    leaves the sample as it is: a grown unit is never made thinner): clipped inserts
    (:func:`insert_displacement`, which repeats at most the unit's rows under its centre) are
    composed, each on the labels the previous ones made, until the unit's label has ``rows *
    g(x)`` more pixels on every column (``g`` the bump's Gaussian across, 1 at ``column``) or
    stops growing. From the second insert on, the centre is the unit's grown top on
    ``column``, so each repeats the rows a third of the way into the unit on every column.
    Every insert squeezes the unit's rows above its centre a little, so it adds fewer rows
    than its shift: the loop counts the rows the unit has gained, not the shifts. The
    composition follows, for each output row, the source of the row just above its position
    in the previous step (no interpolation across the seams where rows repeat). Columns
    without the unit stay.

    Args:
        labels: (H, W) the sample's labels.

    Returns:
        (H, W) float64: the output pixel (y, x) shows the source (y + offset, x).
    """
    height, width = labels.shape
    ys = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    columns = torch.arange(width)[None, :].expand(height, width)
    unit = labels[row, column]
    before = (labels == unit).sum(dim=0)
    source = ys.clone()
    budget = max(float(rows), 0.0) * _across(width, column, spread)
    current = labels
    for _ in range(_GROW_STEPS):
        room = (budget - ((current == unit).sum(dim=0) - before)).clamp(min=0)
        if float(room.max()) < 0.5:
            break
        top = row
        while top > 0 and bool(current[top - 1, column] == unit):
            top -= 1
        offset = _insert_step(
            current, shift=abs(float(rows)), row=top, column=column, spread=spread
        )
        peak = offset.max(dim=0).values
        scale = torch.where(peak > 0, room / peak.clamp(min=1e-9), 0.0).clamp(max=1)
        offset = offset * scale[None, :]
        if float(offset.max()) < 0.5:
            break
        position = ys + offset
        floor = position.floor().long().clamp(0, height - 1)
        source = torch.gather(source, 0, floor) + (position - position.floor())
        current = labels[source.round().long().clamp(0, height - 1), columns]
    return source - ys


#: The clipped insert that :func:`grow_displacement` composes (bound here, so that replacing
#: the module's ``insert_displacement`` cannot make it call itself).
_insert_step = insert_displacement


def thin_displacement(
    labels: torch.Tensor,
    *,
    rows: float,
    row: int,
    column: int,
    spread: float,
) -> torch.Tensor:
    """The vertical source offset of :func:`warp_batch` in mode ``"thin"`` for one sample.

    The unit of pixel (row, column) (on every column, as in :func:`unit_rows`: top ``t(x)``,
    bottom row ``b(x)``, ``l(x)`` rows) is made thinner by ``c(x) = min(rows * g(x), l(x) -
    1, 1.5 t(x))`` rows (``g`` the bump's Gaussian across, 1 at ``column``), cut from just
    above its bottom row: ``offset[y, x] = -c(x)`` from the unit's new top ``T(x) = t(x) +
    c(x)`` down to ``b(x)``, ``-c(x) * sin²(π y / (2 T(x)))`` above it (the layers above
    stretched down to fill, bending back to the unmoved top row; the bound ``1.5 t`` keeps
    depth increasing down every trace) and 0 from ``b(x)`` down (the bottom row and the
    layers under it stay). Only rows of the unit are cut, never all of them; ``rows`` <= 0
    leaves the sample as it is (a thinned unit is never made thicker). Columns without the
    unit stay.

    Args:
        labels: (H, W) the sample's labels.

    Returns:
        (H, W) float64: the output pixel (y, x) shows the source (y + offset, x).
    """
    height, width = labels.shape
    if rows <= 0:
        return torch.zeros((height, width), dtype=torch.float64)
    tops, lengths, _, _ = _unit_runs(labels, row, column)
    top = tops.to(torch.float64)
    bottom = top + lengths.double() - 1
    room = torch.minimum((lengths - 1).clamp(min=0).double(), top * _MONOTONE_SHARE / 0.4)
    cut = torch.minimum(room, float(rows) * _across(width, column, spread))  # (W,)
    new_top = top + cut
    ys = torch.arange(height, dtype=torch.float64)[:, None]
    ramp = torch.where(ys < new_top[None, :], _ramp(ys[:, 0], new_top), 1.0)
    return torch.where(ys < bottom[None, :], -ramp * cut[None, :], 0.0)


def warp_batch(
    batch: dict[str, Any],
    *,
    pixels: float,
    width: float,
    p: float | torch.Tensor,
    generator: torch.Generator,
    centres: torch.Tensor | None = None,
    mode: str = "shift",
    ignore_index: int = 255,
) -> dict[str, Any]:
    """Lift or press down the layers of each sample around a centre, with probability ``p``.

    Per sample, four draws (taken whatever ``p`` and ``centres`` are): the shift, uniform in
    [-pixels, pixels]; whether to warp (``< p``); the centre's row and column, uniform over
    the section, used where ``centres`` gives none. See :func:`warp_displacement` for the
    bump; its lateral spread is ``width`` times the section width.

    Args:
        batch: ``image`` (B, C, H, W), ``label`` (B, H, W), ``pixel_index`` (B, H, W).
        pixels: the largest shift in pixels (>= 0).
        width: the bump's lateral standard deviation as a share of W (> 0).
        p: one probability, or a (B,) tensor of per-sample probabilities.
        centres: optional (B, 2) int64 (row, column) per sample; a negative row means none
            (that sample's centre is drawn).
        mode: ``"shift"``, ``"stretch"`` (see :func:`warp_displacement`), ``"insert"``
            (see :func:`insert_displacement`, which reads ``label``), ``"grow"`` (see
            :func:`grow_displacement`: a positive shift makes the centre's unit thicker by
            that many rows, a negative one leaves the sample as it is) or ``"thin"`` (see
            :func:`thin_displacement`: a positive shift makes it thinner by that many rows, at
            most all but one, a negative one leaves the sample).

    Returns:
        A new dict with warped ``image``, ``label``, ``pixel_index`` (other keys shared);
        samples drawn not to warp are returned bit for bit.
    """
    if mode not in WARP_MODES:
        raise ValueError(f"Expected `mode` to be one of {list(WARP_MODES)}, got {mode!r}")
    size, _, height, width_px = batch["image"].shape
    draw = torch.rand((4, size), generator=generator)
    p = torch.as_tensor(p, dtype=draw.dtype)
    shifts = (draw[0] * 2 - 1) * pixels * (draw[1] < p)
    rows = (draw[2] * height).long().clamp(max=height - 1)
    columns = (draw[3] * width_px).long().clamp(max=width_px - 1)
    if centres is not None:
        given = centres[:, 0] >= 0
        rows = torch.where(given, centres[:, 0], rows)
        columns = torch.where(given, centres[:, 1], columns)
    ys = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width_px)
    xs = torch.arange(width_px, dtype=torch.float64)[None, :].expand(height, width_px)
    sources = {}
    for b in torch.nonzero(shifts).flatten().tolist():
        shape = dict(shift=float(shifts[b]), row=int(rows[b]), column=int(columns[b]))
        if mode == "insert":
            offset = insert_displacement(batch["label"][b], spread=width * width_px, **shape)
        elif mode in ("grow", "thin"):
            resize = grow_displacement if mode == "grow" else thin_displacement
            by = shape.pop("shift")
            offset = resize(batch["label"][b], rows=by, spread=width * width_px, **shape)
        else:
            offset = warp_displacement(
                height, width_px, spread=width * width_px, mode=mode, **shape
            )
        if bool((offset != 0).any()):
            sources[b] = (xs, ys + offset)
    return _resample(batch, sources, ignore_index)


def region_centres(regions: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One selected pixel per sample, uniform over the sample's selected pixels.

    Args:
        regions: (B, H, W) bool.

    Returns:
        (B, 2) int64 (row, column); (-1, -1) for a sample without selected pixels. One draw
        per sample, taken whether or not it has any.
    """
    size, _, width = regions.shape
    draw = torch.rand(size, generator=generator)
    out = torch.full((size, 2), -1, dtype=torch.long)
    for b in range(size):
        flat = torch.nonzero(regions[b].flatten()).flatten()
        if flat.numel():
            pick = int(flat[min(int(draw[b] * flat.numel()), flat.numel() - 1)])
            out[b, 0], out[b, 1] = pick // width, pick % width
    return out
