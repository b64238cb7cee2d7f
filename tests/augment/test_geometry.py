"""Geometric batch changes: the vertical warp against a numpy reference, pixel identity,
layer order, the centre draw, and the warp options of the region methods."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from segforget.augment import build_method, region_centres, rotate_batch, warp_batch
from segforget.augment.geometry import (
    grow_displacement,
    insert_displacement,
    thin_displacement,
    unit_rows,
    warp_displacement,
)

N, H, W = 5, 40, 48


def _layered_batch(sections=(0, 2, 3)):
    """Horizontal layers of 8 rows (classes 0-4), image = 10 x class, pixel_index over N x H x W."""
    labels = (torch.arange(H) // 8)[:, None].expand(H, W)
    idx = torch.as_tensor(sections)
    label = labels[None].repeat(len(sections), 1, 1).clone()
    return {
        "image": label[:, None].float() * 10,
        "label": label,
        "pixel_index": idx[:, None, None] * H * W + torch.arange(H * W).view(H, W),
        "view": ["inline"] * len(sections),
    }


def _reference_offset(shift, row, column, spread, mode="shift"):
    """warp_displacement's formula, written out in numpy; for mode insert the formula of
    insert_displacement on _layered_batch's flat 8-row layers, where the unit lies at the
    same rows on every column."""
    y = np.arange(H, dtype=float)[:, None]
    x = np.arange(W, dtype=float)[None, :]
    across = np.exp(-((x - column) ** 2) / (2 * spread**2))
    if mode == "insert":
        depth = max(row % 8, 8 // 3)  # at least a third of the way into the unit
        row = row - row % 8 + depth
        low, high = -min(0.6 * row, depth), min(0.6 * row, 8 - depth, H - 1 - row)
    else:
        low, high = -0.6 * row, 0.6 * (row if mode == "shift" else H - 1 - row)
    shift = float(np.clip(shift, low, high))
    below = {"shift": 1.0, "stretch": (H - 1 - y) / (H - 1 - row), "insert": 0.0}[mode]
    down = np.where(y >= row, below, np.sin(np.pi * y / (2 * max(row, 1))) ** 2)
    return shift * down * across


def test_warp_displacement_hand_computed_values():
    d = warp_displacement(H, W, shift=6.0, row=30, column=20, spread=4.0).numpy()
    assert d.shape == (H, W)
    assert (d[0] == 0).all()  # the top row never moves
    assert d[30, 20] == 6.0 and d[H - 1, 20] == 6.0  # rigid at and below the centre row
    assert d[15, 20] == pytest.approx(6.0 * math.sin(math.pi / 4) ** 2)  # halfway up: 3.0
    assert d[30, 24] == pytest.approx(6.0 * math.exp(-0.5))  # one spread to the side
    assert d == pytest.approx(_reference_offset(6.0, 30, 20, 4.0))
    # the shift is clipped to 0.6 of the centre's depth: depth stays increasing on every trace
    clipped = warp_displacement(H, W, shift=-50.0, row=10, column=5, spread=8.0).numpy()
    assert clipped.min() == pytest.approx(-6.0)
    assert (np.diff(np.arange(H)[:, None] + clipped, axis=0) > 0).all()


def test_stretch_displacement_hand_computed_values():
    d = warp_displacement(H, W, shift=4.0, row=29, column=20, spread=4.0, mode="stretch")
    d = d.numpy()
    assert (d[0] == 0).all() and (d[H - 1] == 0).all()  # top and bottom rows stay
    assert d[29, 20] == 4.0 and d[34, 20] == pytest.approx(2.0)  # linear to the bottom
    assert d == pytest.approx(_reference_offset(4.0, 29, 20, 4.0, "stretch"))
    # a lift is clipped to 0.6 of the rows below the centre, a press to 0.6 of those above
    lift = warp_displacement(H, W, shift=20.0, row=29, column=20, spread=4.0, mode="stretch")
    press = warp_displacement(H, W, shift=-40.0, row=29, column=20, spread=4.0, mode="stretch")
    assert lift.max() == pytest.approx(6.0) and press.min() == pytest.approx(-17.4)
    for offset in (lift.numpy(), press.numpy()):
        assert (np.diff(np.arange(H)[:, None] + offset, axis=0) > 0).all()
    with pytest.raises(ValueError, match="`mode` to be one of"):
        warp_displacement(H, W, shift=1.0, row=5, column=5, spread=2.0, mode="bend")


def _sloping_labels(height=40, width=48):
    """Four units whose boundaries dip to the right (one row every 6 columns), and a unit 1
    lens that pinches out: absent on columns 0-5."""
    ys = torch.arange(height)[:, None]
    xs = torch.arange(width)[None, :]
    dip = xs // 6
    labels = (ys >= 10 + dip).long() + (ys >= 20 + dip).long() + (ys >= 30 + dip).long()
    lens = (ys >= 10 + dip) & (ys < 20 + dip) & (xs < 6)
    return torch.where(lens, 2, labels)  # columns 0-5: unit 1 missing, unit 2 thicker


def test_unit_rows_follow_the_unit_across_the_section():
    labels = _sloping_labels()
    rows, below, above = unit_rows(labels, 14, 24)  # unit 1 (rows 14-23 at column 24), depth 0
    # the depth is at least a third of the unit (10 rows): 3 rows under the top of the run
    assert rows[24] == 14 + 3 - 0 and above[24] == 3 and below[24] == 7
    assert rows[30] == 10 + 5 + 3 and below[30] == 7  # the top dips one row every 6 columns
    assert (below[:6] == 0).all()  # the unit is missing there: those columns stay
    rows, below, above = unit_rows(labels, 21, 24)  # deeper than a third: its own depth
    assert rows[24] == 21 and above[24] == 7 and below[24] == 3 and rows[47] == 17 + 7
    trace = torch.tensor([0, 0, 1, 1, 1, 2, 2, 1])[:, None]  # a second run of unit 1 below
    assert [t.item() for t in unit_rows(trace, 7, 0)] == [7, 1, 0]
    assert [t.item() for t in unit_rows(trace, 2, 0)] == [3, 2, 1]


def test_insert_displacement_hand_computed_values():
    labels = _layered_batch()["label"][0]  # class 2 in rows 16-23
    d = insert_displacement(labels, shift=3.0, row=20, column=20, spread=4.0).numpy()
    assert (d[0] == 0).all() and (d[20:] == 0).all()  # the top row and the unit's rest stay
    assert d[10, 20] == pytest.approx(3.0 * math.sin(math.pi / 4) ** 2)  # the shift's ramp
    assert d == pytest.approx(_reference_offset(3.0, 20, 20, 4.0, "insert"))
    # rows 20-22 are shown twice: the rows just above row 20 show the rows from it down
    source = np.arange(H) + d[:, 20]
    assert 21.9 < source[19] < 22 and source[20] == 20
    # clipped to the unit: a lift to its 4 rows from row 20 down, a press to its 4 above
    lift = insert_displacement(labels, shift=20.0, row=20, column=20, spread=4.0).numpy()
    press = insert_displacement(labels, shift=-20.0, row=20, column=20, spread=4.0).numpy()
    ramp = math.sin(math.pi * 19 / 40) ** 2
    assert lift.max() == pytest.approx(4.0 * ramp) and press.min() == pytest.approx(-4.0 * ramp)
    # and to 0.6 of the rows above (depth increases along every trace above the unit's row)
    top = insert_displacement(labels, shift=20.0, row=3, column=20, spread=4.0).numpy()
    assert top.max() == pytest.approx(0.6 * 3 * math.sin(math.pi * 2 / 6) ** 2)
    for offset, row in ((lift, 20), (press, 20), (top, 3)):
        assert (np.diff(np.arange(row)[:, None] + offset[:row], axis=0) > 0).all()


def test_insert_thickens_a_sloping_unit_with_its_own_rows_only():
    labels = _sloping_labels()
    batch = {
        "image": labels[None, None].float() * 10,
        "label": labels[None].repeat(3, 1, 1),
        "pixel_index": torch.arange(3 * 40 * 48).view(3, 40, 48),
    }
    batch["image"] = batch["image"].repeat(3, 1, 1, 1)
    centres = torch.tensor([[14, 24]] * 3)
    out, draw = _warp_every_sample(batch, pixels=6.0, seed=2, centres=centres, mode="insert")
    shifts = (draw[0] * 2 - 1) * 6.0
    assert shifts.max() > 1 and shifts.min() < -1  # both a lift and a press among the draws
    for b in range(3):
        lab = out["label"][b]
        unit = (lab == 1).sum(dim=0)  # the unit's thickness per trace
        # clipped to the unit's 7 rows from its row down, its 3 above; a row or so is lost to
        # the ramp's rounding
        want = float(np.clip(shifts[b], -3.0, 7.0))
        change = int(unit[24]) - 10
        assert change * want > 0 and abs(want) - 1.5 <= abs(change) <= math.ceil(abs(want))
        for x in (18, 30):  # about one spread (9.6 columns) away: changed less, the same way
            assert 0 <= (int(unit[x]) - 10) * math.copysign(1, want) <= abs(change)
        assert (lab[:, :6] == labels[:, :6]).all()  # no unit 1 there: nothing moved
        # labels still increase down every trace: only rows of the unit are repeated or cut
        assert (torch.diff(lab, dim=0) >= 0).all()
        # the layers from the unit's row down stay where they were, on every column
        rows, _, _ = unit_rows(labels, 14, 24)
        for x in range(48):
            assert torch.equal(lab[rows[x] :, x], labels[rows[x] :, x])


def _warp_every_sample(batch, *, pixels, seed, centres, mode):
    """warp_batch with p = 1 and width 0.2, and the (4, B) draws it took from ``seed``
    (shift, warp or not, row, column), replayed from a second generator."""
    out = warp_batch(
        batch,
        pixels=pixels,
        width=0.2,
        p=1.0,
        generator=torch.Generator().manual_seed(seed),
        centres=centres,
        mode=mode,
    )
    size = batch["image"].shape[0]
    return out, torch.rand((4, size), generator=torch.Generator().manual_seed(seed)).numpy()


def test_stretch_makes_the_base_unit_thicker_and_pulls_nothing_from_outside():
    batch = _layered_batch()  # class 4 in rows 32-39: the unit at the base
    centres = torch.tensor([[30, 24]] * 3)
    out, draw = _warp_every_sample(batch, pixels=5.0, seed=0, centres=centres, mode="stretch")
    shifts = (draw[0] * 2 - 1) * 5.0
    assert (out["label"] != 255).all() and (out["pixel_index"] >= 0).all()
    for b in range(3):
        base = (out["label"][b] == 4).sum(dim=0)  # the unit's thickness per trace
        assert base[0] == 8  # far from the bump: as before
        assert (base[24] > 8) == bool(shifts[b] > 1.0)
        assert (base[24] < 8) == bool(shifts[b] < -1.0)


@pytest.mark.parametrize("mode", ["shift", "stretch", "insert"])
def test_warp_matches_a_numpy_reference_and_keeps_pixel_identity(mode):
    batch = _layered_batch()
    centres = torch.tensor([[30, 20], [-1, -1], [12, 40]])
    out, draw = _warp_every_sample(batch, pixels=7.0, seed=4, centres=centres, mode=mode)
    for b in range(3):
        shift = (draw[0, b] * 2 - 1) * 7.0
        row, col = centres[b].tolist()
        if row < 0:  # drawn
            row, col = int(draw[2, b] * H), int(draw[3, b] * W)
        src_y = np.arange(H)[:, None] + _reference_offset(shift, row, col, 0.2 * W, mode)
        near = np.round(src_y).astype(int)
        inside = (near >= 0) & (near < H)
        source = batch["label"][b].numpy()[near.clip(0, H - 1), np.arange(W)[None, :]]
        want = np.where(inside, source, 255)
        np.testing.assert_array_equal(out["label"][b].numpy(), want)
        assert (out["label"][b] != batch["label"][b]).any()
        valid = out["pixel_index"][b] >= 0
        np.testing.assert_array_equal(valid.numpy(), inside)
        labels = batch["label"][0].reshape(-1)  # every section has the same layers
        local = out["pixel_index"][b][valid] - [0, 2, 3][b] * H * W
        assert torch.equal(out["label"][b][valid], labels[local])
        # the image moved with the same geometry: whole-pixel samples agree with the labels
        whole = valid & (out["image"][b, 0] % 10 == 0)
        assert whole.float().mean() > 0.8
        assert torch.equal(out["image"][b, 0][whole] / 10, out["label"][b][whole].float())
        # layers bend, they never fold: labels still increase down every trace (in mode
        # insert too: the repeated rows are of the centre's unit only)
        lab = out["label"][b].numpy()
        for x in range(W):
            column = lab[:, x][lab[:, x] != 255]
            assert (np.diff(column) >= 0).all()


def test_warp_probability_and_draws():
    batch = _layered_batch()
    assert warp_batch(batch, pixels=8.0, width=0.2, p=0.0, generator=torch.Generator()) is batch
    every = warp_batch(
        batch, pixels=8.0, width=0.2, p=1.0, generator=torch.Generator().manual_seed(1)
    )
    some = warp_batch(
        batch,
        pixels=8.0,
        width=0.2,
        p=torch.tensor([0.0, 1.0, 0.0]),
        generator=torch.Generator().manual_seed(1),
    )
    for b, warped in ((0, False), (1, True), (2, False)):
        want = every if warped else batch
        for key in ("image", "label", "pixel_index"):
            assert torch.equal(some[key][b], want[key][b])
    assert not torch.equal(every["label"][0], batch["label"][0])


def test_region_centres_are_uniform_over_the_selected_pixels():
    regions = torch.zeros((3, H, W), dtype=torch.bool)
    regions[0, 5:7, 10:12] = True  # 4 pixels
    regions[2, 39, 47] = True
    generator = torch.Generator().manual_seed(0)
    picks = [region_centres(regions, generator) for _ in range(800)]
    assert all(p[1].tolist() == [-1, -1] and p[2].tolist() == [39, 47] for p in picks)
    seen = np.array([p[0].tolist() for p in picks])
    assert set(map(tuple, seen)) == {(5, 10), (5, 11), (6, 10), (6, 11)}
    counts = np.unique(seen, axis=0, return_counts=True)[1]
    assert counts.min() > 150 and counts.max() < 250  # 200 each expected (sd ~12)


def _focus(data=None, **options):
    method = build_method("online", {"inner": "focus", "warp_p": 1.0, **options}).inner
    method.setup(data=data, num_classes=5, ignore_index=255, seed=0)
    region = np.zeros((N, H, W), dtype=bool)
    region[2, 30:33, 20:24] = True  # only section 2 holds selected pixels
    method.set_regions("inline", region.reshape(-1), (H, W))
    return method


@pytest.mark.parametrize("scope", ["all", "regions"])
def test_warp_scope_of_the_region_methods(scope):
    method = _focus(warp=8.0, warp_scope=scope)
    batch = _layered_batch()  # sections 0, 2, 3
    out = method.transform_batch(batch, generator=torch.Generator().manual_seed(2))
    changed = [not torch.equal(out["label"][b], batch["label"][b]) for b in range(3)]
    assert changed == ([True, True, True] if scope == "all" else [False, True, False])
    if scope == "regions":
        # the bump is centred on a selected pixel (columns 20-23): the moved pixels too
        moved = (out["label"][1] != batch["label"][1]).sum(dim=0).double()
        centre = float((moved * torch.arange(W)).sum() / moved.sum())
        assert 20 <= centre <= 23 and moved[:4].sum() == 0 and moved[-8:].sum() == 0


def test_warp_off_changes_nothing_and_leaves_the_rotation_draws_alone():
    batch = _layered_batch()
    method = _focus(rotate=15.0, rotate_p=1.0)
    out = method.transform_batch(batch, generator=torch.Generator().manual_seed(5))
    want = rotate_batch(batch, degrees=15.0, p=1.0, generator=torch.Generator().manual_seed(5))
    for key in ("image", "label", "pixel_index"):
        assert torch.equal(out[key], want[key])


def test_warp_options_and_errors():
    plain = build_method("warp", {"pixels": 5, "width": 0.3, "p": 1.0})
    assert (plain.pixels, plain.width, plain.p) == (5.0, 0.3, 1.0)
    batch = _layered_batch()
    out = plain.transform_batch(batch, generator=torch.Generator().manual_seed(0))
    want = warp_batch(batch, pixels=5.0, width=0.3, p=1.0, generator=torch.Generator())
    assert out["label"].shape == want["label"].shape
    with pytest.raises(ValueError, match="`pixels` to be >= 0"):
        build_method("warp", {"pixels": -1.0})
    with pytest.raises(ValueError, match="`width` to be > 0"):
        build_method("warp", {"width": 0.0})
    with pytest.raises(ValueError, match="unknown \\['warp'\\]"):
        build_method("warp", {"warp": 3.0})
    with pytest.raises(ValueError, match="`warp_scope` to be 'all' or 'regions'"):
        build_method("online", {"inner": "focus", "warp": 3.0, "warp_scope": "some"})
    with pytest.raises(ValueError, match="`warp_width` to be > 0"):
        build_method("online", {"inner": "focus", "warp": 3.0, "warp_width": -0.1})
    with pytest.raises(
        ValueError,
        match="`mode` to be one of \\['shift', 'stretch', 'insert', 'grow', 'thin'\\]",
    ):
        build_method("warp", {"mode": "bend"})
    with pytest.raises(ValueError, match="`warp_mode` to be one of"):
        build_method("online", {"inner": "focus", "warp": 3.0, "warp_mode": "bend"})
    assert build_method("warp", {"mode": "stretch"}).mode == "stretch"
    assert build_method("warp", {"mode": "insert"}).mode == "insert"
    assert build_method("online", {"inner": "focus", "warp_mode": "stretch"}).inner.warp_mode == (
        "stretch"
    )
    with pytest.raises(ValueError, match="`warp_p` to be a probability"):
        build_method("online", {"inner": "focus", "warp": 3.0, "warp_p": 2.0})
    # a chain warps once, in its last member
    chain = build_method("online", {"inner": "oversample+focus", "warp": 4.0}).inner
    assert [m.warp_pixels for m in chain.members] == [0.0, 4.0]


def test_visual_check_draws_the_labels_when_the_warp_moved_them(tmp_path):
    from PIL import Image

    from segforget.augment.figures import style_check

    batch = _layered_batch()
    widths = {}
    for warp in (0.0, 8.0):
        method = _focus(warp=warp, warp_scope="all")
        out = style_check(method, batch, out=tmp_path / f"w{warp}.png", seed=1)
        with Image.open(out) as image:
            widths[warp] = image.size[0]
    # 5 panels per section (labels before and after) against 3
    assert widths[8.0] / widths[0.0] == pytest.approx(5 / 3, rel=0.05)


def _three_units(height=40, width=30, tops=(20, 30)):
    labels = torch.zeros((height, width), dtype=torch.long)
    for top in tops:
        labels[top:] += 1
    return labels


def test_grown_unit_gains_the_asked_rows_from_its_own_rows():
    """Flat layers, a 10-row unit at the base grown by 12 at column 15: 22 rows there (one
    clipped insert adds only 4, the rows under the centre); every column gains round(12 g(x))
    within a row (g the Gaussian across); labels stay ordered down every trace; from the centre
    down the rows stay; a negative size and a unit too thin to repeat leave everything."""
    labels = _three_units()
    offset = grow_displacement(labels, rows=12.0, row=35, column=15, spread=3.0)
    ys = torch.arange(40, dtype=torch.float64)[:, None]
    source = (ys + offset).round().long().clamp(0, 39)
    grown = labels[source, torch.arange(30)[None, :]]
    thickness = (grown == 2).sum(dim=0)
    assert int(thickness[15]) == 22
    once = insert_displacement(labels, shift=12.0, row=35, column=15, spread=3.0)
    single = labels[(ys + once).round().long().clamp(0, 39), torch.arange(30)[None, :]]
    assert int((single == 2).sum(dim=0)[15]) <= 14
    gauss = np.exp(-((np.arange(30) - 15) ** 2) / (2 * 3.0**2))
    assert (np.abs(thickness.numpy() - (10 + 12 * gauss)) <= 1.0).all()
    assert int(thickness[0]) == 10 and torch.equal(grown[:, 0], labels[:, 0])
    assert bool((grown[1:] >= grown[:-1]).all())
    assert bool((offset[35:, 15] == 0).all())
    assert bool((grow_displacement(labels, rows=-12.0, row=35, column=15, spread=3.0) == 0).all())
    thin = _three_units(tops=(20, 39))
    assert bool((grow_displacement(thin, rows=12.0, row=39, column=15, spread=3.0) == 0).all())


def _with_classes(**options):
    """_focus on a data set whose classes are named c0..c4."""
    from types import SimpleNamespace

    return _focus(SimpleNamespace(class_names=[f"c{k}" for k in range(5)], views=()), **options)


@pytest.mark.parametrize("scope", ["all", "regions"])
def test_warp_class_puts_the_centres_on_that_class_only(scope):
    """Scope all: the centre is a pixel of the class (rows 32-39 for c4) in every sample; scope
    regions: a selected pixel of the class (only section 2's row 32, columns 20-23); a sample
    without one is not warped. Against region_centres on the class mask, then warp_batch, with
    the same generator."""
    method = _with_classes(warp=8.0, warp_scope=scope, warp_class="c4", warp_mode="grow")
    batch = _layered_batch()
    out = method.transform_batch(batch, generator=torch.Generator().manual_seed(2))
    generator = torch.Generator().manual_seed(2)
    allowed = batch["label"] == 4
    if scope == "regions":
        allowed = allowed & method.batch_regions(batch)
        assert allowed.sum() == 4 and allowed[1, 32, 20:24].all()
    centres = region_centres(allowed, generator)
    p = (centres[:, 0] >= 0).float()
    want = warp_batch(
        batch, pixels=8.0, width=0.15, p=p, generator=generator, centres=centres, mode="grow"
    )
    for key in ("image", "label", "pixel_index"):
        assert torch.equal(out[key], want[key])
    if scope == "regions":
        for b in (0, 2):
            assert torch.equal(out["label"][b], batch["label"][b])
    none = _with_classes(warp=8.0, warp_scope=scope, warp_class="c0")
    if scope == "regions":  # no selected pixel is of class c0: nothing moves
        assert none.transform_batch(batch, generator=torch.Generator()) is batch


def test_warp_class_must_name_a_class_of_the_data():
    with pytest.raises(ValueError, match="`warp_class` to name a class of the data \\(c0, c1"):
        _with_classes(warp=8.0, warp_class="salt")
    with pytest.raises(TypeError, match="`warp_class`"):
        build_method("online", {"inner": "focus", "warp_class": 3})


def test_warps_apply_in_order_after_the_flat_warp():
    """Flat warp (grow at a c4 pixel, scope all), then warps[0] (insert at a c2 pixel, p 0.7,
    width 0.3); warps[1] has no shift and is dropped. Against region_centres + warp_batch
    called in the same order on the same generator."""
    method = _with_classes(
        warp=6.0,
        warp_scope="all",
        warp_class="c4",
        warp_mode="grow",
        warps=[
            {
                "pixels": 5.0,
                "p": 0.7,
                "width": 0.3,
                "mode": "insert",
                "scope": "all",
                "class": "c2",
            },
            {"pixels": 0.0, "mode": "stretch"},
        ],
    )
    assert [(w.mode, w.class_name) for w in method.warps] == [("grow", "c4"), ("insert", "c2")]
    assert method.warp_class_indices == [4, 2]
    batch = _layered_batch()
    for seed in range(4):
        out = method.transform_batch(batch, generator=torch.Generator().manual_seed(seed))
        generator = torch.Generator().manual_seed(seed)
        want = batch
        for cls, pixels, p, width, mode in (
            (4, 6.0, 1.0, 0.15, "grow"),
            (2, 5.0, 0.7, 0.3, "insert"),
        ):
            centres = region_centres(want["label"] == cls, generator)
            want = warp_batch(
                want,
                pixels=pixels,
                width=width,
                p=(centres[:, 0] >= 0).float() * p,
                generator=generator,
                centres=centres,
                mode=mode,
            )
        for key in ("image", "label", "pixel_index"):
            assert torch.equal(out[key], want[key])
    # the second warp changed something the first alone does not
    first = _with_classes(warp=6.0, warp_scope="all", warp_class="c4", warp_mode="grow")
    alone = [
        first.transform_batch(batch, generator=torch.Generator().manual_seed(s))["label"]
        for s in range(4)
    ]
    both = [
        method.transform_batch(batch, generator=torch.Generator().manual_seed(s))["label"]
        for s in range(4)
    ]
    assert any(not torch.equal(a, b) for a, b in zip(alone, both))


def test_a_warps_entry_is_the_flat_warp_bit_for_bit():
    """The same warp given flat or as the only entry of `warps`: the same batches."""
    flat = _focus(warp=8.0, warp_mode="insert", warp_scope="all", warp_p=0.6)
    listed = _focus(warps=[{"pixels": 8.0, "mode": "insert", "scope": "all", "p": 0.6}])
    assert flat.warps == listed.warps
    batch = _layered_batch()
    for seed in range(3):
        a = flat.transform_batch(batch, generator=torch.Generator().manual_seed(seed))
        b = listed.transform_batch(batch, generator=torch.Generator().manual_seed(seed))
        for key in ("image", "label", "pixel_index"):
            assert torch.equal(a[key], b[key])


def test_warps_errors_name_the_entry_and_key():
    with pytest.raises(ValueError, match="`warps\\[0\\].mode` to be one of"):
        _focus(warps=[{"pixels": 4.0, "mode": "bend"}])
    with pytest.raises(ValueError, match="`warps\\[1\\].scope` to be 'all' or 'regions'"):
        _focus(warps=[{"pixels": 4.0}, {"pixels": 4.0, "scope": "some"}])
    with pytest.raises(ValueError, match="`warps\\[0\\].p` to be a probability"):
        _focus(warps=[{"pixels": 4.0, "p": 1.5}])
    with pytest.raises(ValueError, match="keys of option `warps\\[0\\]`.*unknown \\['warp'\\]"):
        _focus(warps=[{"warp": 4.0}])
    with pytest.raises(TypeError, match="`warps` to be a list of mappings"):
        _focus(warps={"pixels": 4.0})
    with pytest.raises(TypeError, match="`warps\\[0\\].pixels` to be float"):
        _focus(warps=[{"pixels": "4"}])
    with pytest.raises(ValueError, match="`warps\\[0\\].class` to name a class of the data"):
        _with_classes(warps=[{"pixels": 4.0, "class": "salt"}])
    # a chain warps once, in its last member
    chain = build_method("online", {"inner": "oversample+focus", "warps": [{"pixels": 4.0}]})
    assert [len(m.warps) for m in chain.inner.members] == [0, 1]


def _uneven_units(height=40, width=12, thick=12, thin=4):
    """Unit 0 on rows 0-9, unit 1 from row 10: ``thick`` rows on the left half of the
    columns, ``thin`` rows on the right half; unit 2 below."""
    labels = torch.zeros((height, width), dtype=torch.long)
    for x in range(width):
        t = thick if x < width // 2 else thin
        labels[10 : 10 + t, x] = 1
        labels[10 + t :, x] = 2
    return labels


def _apply(labels, offset, fill=255):
    """Labels at the nearest source row of ``offset``; rows from outside the section: fill."""
    height, width = labels.shape
    source = (torch.arange(height, dtype=torch.float64)[:, None] + offset).round().long()
    inside = (source >= 0) & (source < height)
    out = labels[source.clamp(0, height - 1), torch.arange(width)[None, :]]
    return torch.where(inside, out, torch.full_like(out, fill))


def test_insert_cuts_only_the_units_rows_where_it_is_thinner_than_the_centres_depth():
    """A cut of 8 at depth 10 of a unit 12 rows thick on the left and 4 on the right: the
    left loses 8 rows of the unit; on the right the centre's depth lies below the unit, so
    nothing is cut there (before the fix 2 rows of the unit and 6 of the next one went)."""
    labels = _uneven_units()
    out = _apply(labels, insert_displacement(labels, shift=-8.0, row=20, column=3, spread=100.0))
    assert (out == 1).sum(dim=0)[:6].tolist() == [4] * 6
    assert torch.equal(out[:, 6:], labels[:, 6:])
    assert torch.equal((out == 2).sum(dim=0), (labels == 2).sum(dim=0))


def test_thin_cuts_the_unit_from_above_its_bottom_row_on_every_column():
    """Unit 1 (12 rows left, 4 right, top at row 10) thinned by 8 over a Gaussian of spread
    3 at column 3: each column loses min(8 g(x), rows - 1, 1.5 * 10) rows of it (to a row:
    nearest source rows); the unit below keeps every row; the unit above is stretched down
    by as many rows (no row from outside the section); labels stay ordered; a negative size
    or a unit of one row leave everything."""
    labels = _uneven_units()
    offset = thin_displacement(labels, rows=8.0, row=12, column=3, spread=3.0)
    out = _apply(labels, offset)
    gauss = np.exp(-((np.arange(12) - 3) ** 2) / (2 * 3.0**2))
    before = (labels == 1).sum(dim=0).numpy()
    cut = np.minimum(np.minimum(8 * gauss, before - 1), 15.0)
    after = (out == 1).sum(dim=0).numpy()
    assert (np.abs(after - (before - cut)) <= 1.0).all()
    assert int(after[3]) == 4 and after[6:8].tolist() == [1, 1]  # the bottom row stays
    assert torch.equal((out == 2).sum(dim=0), (labels == 2).sum(dim=0))
    below = int(10 + before.max())
    assert torch.equal(out[below:], labels[below:])
    assert (np.abs((out == 0).sum(dim=0).numpy() - (10 + cut)) <= 1.0).all()
    assert not bool((out == 255).any())
    assert bool((out[1:] >= out[:-1]).all())
    assert bool((thin_displacement(labels, rows=-5.0, row=12, column=3, spread=3.0) == 0).all())
    one = _uneven_units(thick=1, thin=1)
    assert bool((thin_displacement(one, rows=5.0, row=10, column=3, spread=3.0) == 0).all())


@pytest.mark.parametrize(
    ("mode", "centres", "expected"),
    [
        ("grow", [[36, 20], [36, 30], [36, 10]], lambda shift: 8 + shift),
        ("thin", [[36, 20], [36, 30], [26, 10]], lambda shift: 8 - min(shift, 7)),
    ],
)
def test_grow_and_thin_modes_resize_on_positive_draws_and_leave_negative_ones(
    mode, centres, expected
):
    """warp_batch in mode grow / thin: the centre's unit (8 rows) of a sample drawn a positive
    shift is that much thicker / thinner (at most 7 rows cut) at the centre column, to half a
    row; pixel identity holds; labels stay ordered; a sample drawn a negative shift is
    returned bit for bit."""
    batch = _layered_batch()
    centres = torch.tensor(centres)
    signs = set()
    for seed in range(6):
        out, draw = _warp_every_sample(batch, pixels=6.0, seed=seed, centres=centres, mode=mode)
        for b in range(3):
            shift = float((draw[0, b] * 2 - 1) * 6.0)
            signs.add(shift > 0)
            row, column = int(centres[b, 0]), int(centres[b, 1])
            if shift <= 0:
                for key in ("image", "label", "pixel_index"):
                    assert torch.equal(out[key][b], batch[key][b])
                continue
            thickness = int((out["label"][b][:, column] == row // 8).sum())
            assert abs(thickness - expected(shift)) <= 0.5 + 1e-9
            valid = out["pixel_index"][b] >= 0
            local = out["pixel_index"][b][valid] - [0, 2, 3][b] * H * W
            assert torch.equal(out["label"][b][valid], batch["label"][0].reshape(-1)[local])
            assert bool((out["label"][b][1:] >= out["label"][b][:-1]).all())
    assert signs == {True, False}
