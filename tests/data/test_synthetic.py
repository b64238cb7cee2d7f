"""The synthetic survey: shapes, F3 cuts, determinism, class fractions, geology facts."""

from __future__ import annotations

import numpy as np
import pytest

from segforget.classes import F3_CLASS_FRACTIONS
from segforget.data import generate_survey, survey_labels
from segforget.data.synthetic import PRESETS, _build, ricker, survey_config

TINY = dict(train_inlines=10, train_crosslines=24, samples=48, test1_inlines=5, test2_crosslines=7)


@pytest.fixture(scope="module")
def tiny():
    return generate_survey("small", seed=3, **TINY)


def test_f3_preset_has_f3_shapes():
    assert survey_config("f3").volume_shapes == {
        "train": (401, 701, 255),
        "test1": (200, 701, 255),
        "test2": (601, 200, 255),
    }
    assert survey_config("f3").survey_shape == (601, 901, 255)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_are_cut_like_f3(preset):
    config = PRESETS[preset]
    n_il, n_xl, depth = config.survey_shape
    shapes = config.volume_shapes
    assert shapes["test1"][0] + shapes["train"][0] == n_il == shapes["test2"][0]
    assert shapes["train"][1] + shapes["test2"][1] == n_xl
    assert shapes["test1"][1] == shapes["train"][1]


def test_small_preset_is_small_and_fast():
    import time

    start = time.perf_counter()
    survey = generate_survey("small", seed=0)
    elapsed = time.perf_counter() - start
    assert survey.train_seismic.shape == (48, 128, 96)
    assert elapsed < 4.0  # < 2 s on an idle core; headroom for parallel test runs


def test_volumes_dtypes_and_read_only(tiny):
    assert set(tiny.volumes) == {"train", "test1", "test2"}
    assert tiny.volumes["train"][0].shape == (10, 24, 48)
    assert tiny.volumes["test1"][0].shape == (5, 24, 48)
    assert tiny.volumes["test2"][0].shape == (15, 7, 48)
    for seismic, labels in tiny.volumes.values():
        assert seismic.dtype == np.float32 and labels.dtype == np.uint8
        assert np.isfinite(seismic).all() and labels.max() <= 5
        assert not seismic.flags.writeable and not labels.flags.writeable


def test_same_seed_same_bytes_other_seed_other_bytes(tiny):
    again = generate_survey("small", seed=3, **TINY)
    other = generate_survey("small", seed=4, **TINY)
    for name in tiny.volumes:
        assert tiny.volumes[name][0].tobytes() == again.volumes[name][0].tobytes()
        assert tiny.volumes[name][1].tobytes() == again.volumes[name][1].tobytes()
    assert tiny.train_seismic.tobytes() != other.train_seismic.tobytes()


def test_cuts_come_from_one_survey(tiny):
    """Reference: render the whole survey at once and cut it by hand."""
    geology = _build("small", 3, TINY)
    labels, _ = geology.render(np.arange(geology.shape[0]), ricker(22.0, 8.0))
    t1, xt = TINY["test1_inlines"], TINY["train_crosslines"]
    np.testing.assert_array_equal(tiny.volumes["test1"][1], labels[:t1, :xt])
    np.testing.assert_array_equal(tiny.volumes["train"][1], labels[t1:, :xt])
    np.testing.assert_array_equal(tiny.volumes["test2"][1], labels[:, xt:])


def test_chunking_does_not_change_bytes(tiny, monkeypatch):
    from segforget.data import synthetic

    monkeypatch.setattr(synthetic, "_CHUNK_INLINES", 3)
    rechunked = generate_survey("small", seed=3, **TINY)
    for name in tiny.volumes:
        assert tiny.volumes[name][0].tobytes() == rechunked.volumes[name][0].tobytes()


@pytest.mark.parametrize("volume", ["train", "test1", "test2"])
def test_label_only_path_equals_generated_labels(tiny, volume):
    full = tiny.volumes[volume][1]
    np.testing.assert_array_equal(survey_labels("small", seed=3, volume=volume, **TINY), full)
    np.testing.assert_array_equal(
        survey_labels("small", seed=3, volume=volume, lateral_step=3, **TINY), full[::3, ::3]
    )


@pytest.mark.parametrize("seed", range(6))
def test_units_are_ordered_top_to_bottom(seed):
    """Along every trace labels never decrease with depth (normal faults repeat no unit)."""
    for volume in ("train", "test1", "test2"):
        labels = survey_labels("small", seed=seed, volume=volume, lateral_step=2)
        assert (np.diff(labels.astype(np.int16), axis=2) >= 0).all()


def _fractions(labels):
    return np.bincount(labels.ravel(), minlength=6) / labels.size


@pytest.mark.parametrize("preset,step", [("medium", 2), ("f3", 4)])
def test_train_class_fractions_match_f3(preset, step):
    """Label-only geometry at reduced lateral resolution (the full f3 run is the slow test)."""
    fractions = _fractions(survey_labels(preset, seed=0, lateral_step=step))
    np.testing.assert_allclose(fractions, F3_CLASS_FRACTIONS, rtol=0.35)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["medium", "f3"])
def test_full_resolution_fractions_match_f3(preset):
    survey = generate_survey(preset, seed=0)
    np.testing.assert_allclose(_fractions(survey.train_labels), F3_CLASS_FRACTIONS, rtol=0.35)


def test_small_fractions_and_every_class_in_every_volume():
    survey = generate_survey("small", seed=0)
    np.testing.assert_allclose(_fractions(survey.train_labels), F3_CLASS_FRACTIONS, rtol=0.35)
    for name, (_, labels) in survey.volumes.items():
        assert (np.bincount(labels.ravel(), minlength=6) > 0).all(), name


def test_geology_has_faults_pinchout_and_salt():
    geology = _build("small", 0, {})
    n_il, n_xl, depth = geology.shape
    maps = geology.base_maps(np.arange(n_il), np.arange(n_xl))
    horizons = geology.horizons(maps, geology.params)
    scruff = horizons[4] - horizons[3]
    assert (scruff <= 0).mean() > 0.1 and (scruff > 1).mean() > 0.2  # pinches out
    zsrc = geology.depth_of_source(maps)
    throw = np.arange(depth) - zsrc
    assert throw.max() > 2.0 and (throw[:, :, : depth // 3] == 0).all()  # deep normal faults
    assert maps["dome"].max() > 0.5


def test_noise_knob_changes_the_signal_to_noise_ratio():
    kwargs = dict(seed=1, faults=0, **TINY)
    clean = generate_survey("small", snr=1000.0, **kwargs).train_seismic.astype(np.float64)
    noisy = generate_survey("small", snr=1.0, **kwargs).train_seismic.astype(np.float64)
    # Amplitudes are scaled to the same signal level, so the difference is the noise.
    ratio = np.sqrt(np.mean(clean**2) / np.mean((noisy - clean) ** 2))
    assert 0.6 < ratio < 1.6


def test_ricker_is_a_zero_phase_wavelet():
    w = ricker(30.0, 4.0)
    assert w.size % 2 == 1 and w[w.size // 2] == pytest.approx(1.0)
    np.testing.assert_allclose(w, w[::-1])
    spectrum = np.abs(np.fft.rfft(w, 1024))
    peak_hz = np.argmax(spectrum) / 1024 / 0.004
    assert peak_hz == pytest.approx(30.0, abs=2.0)


def test_knob_errors():
    with pytest.raises(
        ValueError, match=r"Expected `preset` to be one of \['f3', 'medium', 'small'\]"
    ):
        generate_survey("large")
    with pytest.raises(ValueError, match=r"Expected `train_inlines` to be an int >= 2"):
        generate_survey("small", train_inlines=1)
    with pytest.raises(ValueError, match=r"Expected `snr` to be a positive number"):
        generate_survey("small", snr=0.0)
    with pytest.raises(ValueError, match=r"Expected `seed` to be an int >= 0"):
        generate_survey("small", seed=-1)
    with pytest.raises(ValueError, match=r"Expected `peak_hz \* dt_ms / 1000` <= 0.3"):
        generate_survey("small", peak_hz=80.0)
    with pytest.raises(ValueError, match=r"Expected knobs among"):
        survey_labels("small", colour="red")
    with pytest.raises(ValueError, match=r"Expected `lateral_step` to be an int >= 1"):
        survey_labels("small", lateral_step=0)
    with pytest.raises(ValueError, match=r"Expected `volume` to be one of"):
        survey_labels("small", volume="test3")


def test_test_cuts_can_be_omitted(tmp_path):
    from segforget.data import read_f3, write_survey

    survey = generate_survey(
        "small",
        seed=0,
        train_inlines=6,
        train_crosslines=10,
        samples=32,
        test1_inlines=0,
        test2_crosslines=0,
    )
    assert set(survey.volumes) == {"train"}
    data = read_f3(write_survey(tmp_path / "d", survey))
    assert data.test_splits == () and data.volumes["train"][0].shape == (6, 10, 32)
