"""load_data specs, the synthetic cache."""

from __future__ import annotations

import numpy as np
import pytest

from segforget.data import generate_survey, load_data
from segforget.data import spec as spec_module


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGFORGET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_synthetic_spec_generates_once_then_reads_the_cache(cache, monkeypatch):
    data = load_data("synthetic:small:5")
    assert data.name == "synthetic:small:5"
    path = spec_module.synthetic_cache_path("small", 5)
    assert path.parent.parent == cache and (path / "survey.json").is_file()
    reference = generate_survey("small", seed=5)
    np.testing.assert_array_equal(data.volumes["train"][0], reference.train_seismic)
    np.testing.assert_array_equal(data.volumes["test2"][1], reference.volumes["test2"][1])
    assert data.num_classes == 6 and data.in_channels == 1 and data.ignore_index == 255

    def refuse(*args, **kwargs):
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr("segforget.data.synthetic.generate_survey", refuse)
    again = load_data("synthetic:small:5", val_fraction=0.2, seed=1)
    assert again.val_fraction == 0.2
    assert not list(path.parent.glob(".*tmp"))  # no leftovers of the atomic write


def test_default_seed_is_zero(cache):
    assert load_data("synthetic:small").name == "synthetic:small:0"


@pytest.mark.parametrize(
    "spec,match",
    [
        (
            "small",
            r"Expected `spec` to be 'synthetic:PRESET\[:SEED\]', 'f3:DIR' or 'images:DIR', "
            r"got 'small'",
        ),
        ("f3:", r"Expected `spec` to be .*got 'f3:'"),
        ("hdf5:x", r"Expected `spec` to be"),
        (
            "synthetic:huge",
            r"Expected the preset in `spec` to be one of \['f3', 'medium', 'small'\], got 'huge'",
        ),
        ("synthetic:small:x", r"Expected the seed in `spec` to be an int >= 0"),
        ("synthetic:small:-1", r"Expected the seed in `spec` to be an int >= 0"),
    ],
)
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        load_data(spec)


def test_spec_must_be_a_string():
    with pytest.raises(TypeError, match=r"Expected `spec` to be a str"):
        load_data(3)


def test_split_options_are_checked(cache):
    with pytest.raises(ValueError, match=r"Expected `val_fraction` to be a number in \[0, 1\)"):
        load_data("synthetic:small", val_fraction=-0.1)
    with pytest.raises(TypeError, match=r"Expected `seed` to be an int"):
        load_data("synthetic:small", seed=0.5)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    """$SEGFORGET_CACHE, else $XDG_CACHE_HOME/segforget, else ~/.cache/segforget; the synthetic
    surveys and the compiled kernel share this one root."""
    from segforget.data.spec import synthetic_cache_path
    from segforget.dynamics import _native
    from segforget.io import cache_dir

    monkeypatch.delenv("SEGFORGET_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "segforget"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "segforget"
    monkeypatch.setenv("SEGFORGET_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    assert synthetic_cache_path("small", 3).parent == tmp_path / "mine" / "synthetic"
    assert _native.cache_dir is cache_dir
