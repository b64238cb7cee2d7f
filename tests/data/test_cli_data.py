"""segforget synth / import-segy / data info."""

from __future__ import annotations

import json

import numpy as np
import pytest
import segyio

from helpers import assert_user_error, run_cli
from segforget.data import generate_survey, read_f3


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGFORGET_CACHE", str(tmp_path / "cache"))


def test_synth_writes_the_layout_and_a_preview(tmp_path):
    out = tmp_path / "survey"
    result = run_cli(["synth", "--preset", "small", "--seed", "2", "--out", out, "--preview"])
    assert result.code == 0, result.stderr
    data = read_f3(out)
    reference = generate_survey("small", seed=2)
    for name, (seismic, labels) in reference.volumes.items():
        assert data.volumes[name][0].tobytes() == seismic.tobytes()
        assert data.volumes[name][1].tobytes() == labels.tobytes()
    meta = json.loads((out / "survey.json").read_text())
    assert meta["seed"] == 2 and meta["config"]["name"] == "small"
    png = (out / "preview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_synth_preview_only(tmp_path):
    png = tmp_path / "p.png"
    result = run_cli(["synth", "--preview-only", png, "--snr", "2", "--contrast", "0.7"])
    assert result.code == 0, result.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_synth_user_errors_write_nothing(tmp_path):
    out = tmp_path / "o"
    assert_user_error(
        run_cli(["synth", "--preset", "huge", "--out", out]), "expected `preset`", "huge"
    )
    assert_user_error(run_cli(["synth", "--snr", "-1", "--out", out]), "expected `snr`")
    assert_user_error(run_cli(["synth"]), "--out")
    assert_user_error(run_cli(["synth", "--preview-only", tmp_path / "x.jpg"]), ".png")
    assert not out.exists()
    out.mkdir()
    assert_user_error(run_cli(["synth", "--out", out]), "not to exist", "--force")
    assert run_cli(["synth", "--out", out, "--force"]).code == 0
    assert (out / "train" / "train_seismic.npy").is_file()


def test_data_info_numbers_match_an_independent_count(tmp_path):
    out = tmp_path / "s"
    assert run_cli(["synth", "--out", out, "--seed", "1"]).code == 0
    result = run_cli(["data", "info", "--data", f"f3:{out}", "--json"])
    assert result.code == 0, result.stderr
    info = json.loads(result.stdout)
    labels = np.load(out / "train" / "train_labels.npy")
    seismic = np.load(out / "train" / "train_seismic.npy")
    fractions = info["volumes"]["train"]["class_fractions"]
    assert fractions["scruff"] == pytest.approx(np.mean(labels == 4))
    assert info["volumes"]["train"]["max"] == pytest.approx(float(seismic.max()))
    assert info["train_std"] == pytest.approx(float(seismic.astype(np.float64).std()), rel=1e-6)
    assert info["spaces"]["test2/inline"]["section_shape"] == [96, 36]
    table = run_cli(["data", "info", "--data", f"f3:{out}"])
    assert table.code == 0 and "scruff" in table.stdout and "test2/crossline" in table.stdout


def test_data_info_errors(tmp_path):
    assert_user_error(run_cli(["data", "info", "--data", "nope"]), "expected `spec`")
    assert_user_error(run_cli(["data", "info", "--data", f"f3:{tmp_path / 'x'}"]), "f3 layout")


def test_import_segy_command(tmp_path):
    rng = np.random.default_rng(0)
    seismic = rng.normal(size=(6, 8, 10)).astype(np.float32)
    labels = np.sort(rng.integers(0, 6, seismic.shape), axis=2).astype(np.uint8)
    segyio.tools.from_array3D(str(tmp_path / "c.sgy"), seismic, format=5)
    np.save(tmp_path / "l.npy", labels)
    out = tmp_path / "o"
    args = ["import-segy", tmp_path / "c.sgy", "--labels", tmp_path / "l.npy", "--out", out]
    result = run_cli([*args, "--test1-inlines", "0:2", "--test2-crosslines", "6:8"])
    assert result.code == 0, result.stderr
    data = read_f3(out)
    assert data.volumes["train"][0].tobytes() == seismic[2:, :6].tobytes()
    assert_user_error(run_cli(args), "not to exist")
    bad = tmp_path / "bad"
    for xline in ("21", "13"):  # no geometry at all / a wrong one (1 inline)
        assert_user_error(
            run_cli([*args[:-1], bad, "--iline", "9", "--xline", xline]),
            "--iline byte --xline byte",
        )
    assert not bad.exists()
