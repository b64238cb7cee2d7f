"""Outputs never destroy what they should not: --force replaces only an earlier output of the same
command (never a user's folder, never a file by a folder), a failed write leaves no new file,
and messages name the user's paths, not temporaries."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from reliability_builders import diff_snapshots, snapshot, tiny_volume, write_segy

from helpers import assert_user_error, run_cli

#: Options that make al-sim stop at its first real step (the output checks come before it).
AL_SIM = ["al-sim", "--strategies", "random", "--rounds", "1", "--seeds", "0"]


def precious(path):
    """A user's folder holding a file that must survive."""
    path.mkdir()
    (path / "notes.txt").write_text("precious")
    return path


def run_quietly(args):
    threads = torch.get_num_threads()
    try:
        return run_cli(args)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """Work inside ``tmp_path`` (relative outputs and the cache land there)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEGFORGET_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def segy_pair(inputs):
    """A tiny SEG-Y cube and its .npy labels."""
    seismic, labels = tiny_volume()
    np.save(inputs / "labels.npy", labels)
    return write_segy(inputs / "cube.sgy", seismic), inputs / "labels.npy"


def _commands(finished_run, segy_pair):
    """argv of each folder-writing command, with its --out and --force to append."""
    seismic, labels = segy_pair
    return {
        "label-issues": ["label-issues", finished_run],
        "al-sim": AL_SIM,
        "synth": ["synth"],
        "import-segy": ["import-segy", seismic, "--labels", labels],
    }


@pytest.mark.parametrize("command", ["label-issues", "al-sim", "synth", "import-segy"])
def test_force_refuses_a_folder_the_command_did_not_write(command, inputs, finished_run, segy_pair):
    folder = precious(inputs / "mine")
    argv = _commands(finished_run, segy_pair)[command]
    before = snapshot(inputs)
    result = run_quietly([*argv, "--out", folder, "--force"])
    assert_user_error(result, "refusing to delete", str(folder), "notes.txt", "another --out")
    assert diff_snapshots(before, snapshot(inputs)) == []


@pytest.mark.parametrize("command", ["label-issues", "al-sim", "synth", "import-segy"])
@pytest.mark.parametrize("force", [False, True])
def test_a_file_at_out_is_never_replaced_by_a_folder(
    command, force, inputs, finished_run, segy_pair
):
    target = inputs / "out"
    target.write_text("precious")
    argv = _commands(finished_run, segy_pair)[command]
    before = snapshot(inputs)
    result = run_quietly([*argv, "--out", target, *(["--force"] if force else [])])
    assert_user_error(result, "to be a folder to write, got the file", str(target))
    assert diff_snapshots(before, snapshot(inputs)) == []


@pytest.mark.parametrize("command", ["label-issues", "synth", "import-segy"])
def test_force_refuses_a_marker_beside_a_users_file(command, inputs, finished_run, segy_pair):
    # The marker alone is not enough: a user's file beside it must survive.
    folder = precious(inputs / "mine")
    marker = "summary.json" if command == "label-issues" else "survey.json"
    (folder / marker).write_text("{}")
    argv = _commands(finished_run, segy_pair)[command]
    result = run_quietly([*argv, "--out", folder, "--force"])
    assert_user_error(result, "refusing to delete", "notes.txt")
    assert (folder / "notes.txt").read_text() == "precious"


def test_force_refuses_a_file_inside_a_layout_folder(inputs):
    run_quietly(["synth", "--out", "survey"])
    (inputs / "survey" / "train" / "mine.npy").write_bytes(b"precious")
    result = run_quietly(["synth", "--out", "survey", "--force"])
    assert_user_error(result, "refusing to delete", "train/mine.npy")
    assert (inputs / "survey" / "train" / "mine.npy").read_bytes() == b"precious"


def test_force_refuses_an_output_folder_without_its_marker(inputs):
    folder = inputs / "curves"
    folder.mkdir()
    (folder / "curves.png").write_bytes(b"png")
    result = run_quietly([*AL_SIM, "--out", folder, "--force"])
    assert_user_error(result, "refusing to delete", "without curves.json")


def test_force_replaces_an_earlier_output_of_the_same_command(inputs, finished_run, segy_pair):
    assert run_quietly(["synth", "--out", "survey", "--preview"]).code == 0
    result = run_quietly(["synth", "--out", "survey", "--seed", "1", "--force"])
    assert result.code == 0, result.stderr
    assert json.loads((inputs / "survey" / "survey.json").read_text())["seed"] == 1

    seismic, labels = segy_pair
    argv = ["import-segy", seismic, "--labels", labels, "--out", "imported"]
    assert run_quietly(argv).code == 0
    assert run_quietly([*argv, "--test1-inlines", "0:1", "--force"]).code == 0
    assert (inputs / "imported" / "test_once" / "test1_labels.npy").is_file()

    out = inputs / "issues"
    argv = ["label-issues", finished_run, "--out", out]
    assert run_quietly(argv).code == 0
    assert run_quietly([*argv, "--force", "--display", "0"]).code == 0
    assert sorted(p.name for p in out.iterdir()) == ["pixels.csv", "sections.csv", "summary.json"]
    (inputs / "empty").mkdir()
    assert run_quietly(["label-issues", finished_run, "--out", "empty", "--force"]).code == 0


def test_synth_and_import_segy_do_not_replace_each_others_survey(inputs, segy_pair):
    """Both write survey.json; its "source" tells whose folder it is (an imported real survey
    is not replaced by a synthetic one, nor the other way round)."""
    seismic, labels = segy_pair
    assert run_quietly(["import-segy", seismic, "--labels", labels, "--out", "real"]).code == 0
    assert run_quietly(["synth", "--out", "fake"]).code == 0
    before = snapshot(inputs)
    result = run_quietly(["synth", "--out", "real", "--force"])
    assert_user_error(result, "segforget synth", "source 'synthetic'", "has source 'segy'")
    result = run_quietly(["import-segy", seismic, "--labels", labels, "--out", "fake", "--force"])
    assert_user_error(result, "segforget import-segy", "source 'segy'", "has source 'synthetic'")
    (inputs / "fake" / "survey.json").write_text("not json")
    assert_user_error(
        run_quietly(["synth", "--out", "fake", "--force"]), "survey.json is not readable JSON"
    )
    (inputs / "fake" / "survey.json").write_text("[1, 2]")
    assert_user_error(
        run_quietly(["synth", "--out", "fake", "--force"]), "survey.json is not a JSON object"
    )
    changed = diff_snapshots(before, snapshot(inputs))
    assert changed == ["changed fake/survey.json"], changed


def test_force_on_an_earlier_al_sim_output_reaches_the_simulation(inputs, monkeypatch):
    def stop(*args, **kwargs):
        raise ValueError("simulation reached")

    monkeypatch.setattr("segforget.analysis.active_learning.simulate_active_learning", stop)
    folder = inputs / "curves"
    folder.mkdir()
    (folder / "curves.json").write_text("{}")
    (folder / "curves.png").write_bytes(b"png")
    assert_user_error(run_quietly([*AL_SIM, "--out", folder, "--force"]), "simulation reached")


def _fake_simulation(during):
    """A stand-in for the long simulation that runs ``during()`` meanwhile."""

    def simulate(*args, **kwargs):
        during()
        curve = {"labeled": [2, 3], "miou_mean": [0.5, 0.6], "miou_std": [0.0, 0.0]}
        config = {"data": "synthetic:small:0", "view": "inline", "seeds": [0]}
        return {"config": config, "curves": {"random": curve}, "paired": {"random": {}}}

    return simulate


@pytest.mark.parametrize("force", [False, True])
def test_al_sim_rechecks_out_before_its_output_lands(force, inputs, monkeypatch):
    """A user's file put into (or a folder made at) --out during a long al-sim survives; the
    finished curves are kept beside it at OUT.unsaved-PID, named in the one-line error."""
    folder = inputs / "curves"
    if force:  # an earlier al-sim output, replaced with --force, gets a user's file meanwhile
        folder.mkdir()
        (folder / "curves.json").write_text("{}")
        during = lambda: (folder / "notes.txt").write_text("precious")  # noqa: E731
    else:  # --out is free at the start; someone makes the folder meanwhile
        during = lambda: precious(folder)  # noqa: E731
    monkeypatch.setattr(
        "segforget.analysis.active_learning.simulate_active_learning", _fake_simulation(during)
    )
    result = run_quietly([*AL_SIM, "--out", folder, *(["--force"] if force else [])])
    assert_user_error(result, str(folder), "nothing was replaced", "unsaved-")
    assert (folder / "notes.txt").read_text() == "precious"
    kept = [p for p in inputs.iterdir() if p.name.startswith("curves.unsaved-")]
    assert len(kept) == 1 and result.stderr.strip().endswith(f"{str(kept[0])!r}")
    assert json.loads((kept[0] / "curves.json").read_text())["curves"]["random"]["labeled"] == [
        2,
        3,
    ]
    assert (kept[0] / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in inputs.iterdir() if p.name.startswith(".curves")]


def test_label_issues_rechecks_out_before_its_output_lands(inputs, finished_run, monkeypatch):
    import segforget.analysis.label_issues as module

    folder = inputs / "issues"
    assert run_quietly(["label-issues", finished_run, "--out", folder]).code == 0
    original = module.label_issues_from_run

    def meanwhile(*args, **kwargs):
        (folder / "notes.txt").write_text("precious")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "label_issues_from_run", meanwhile)
    result = run_quietly(["label-issues", finished_run, "--out", folder, "--force"])
    assert_user_error(result, "refusing to delete", "notes.txt", "nothing was replaced")
    assert (folder / "notes.txt").read_text() == "precious"
    kept = inputs / next(p.name for p in inputs.iterdir() if p.name.startswith("issues.unsaved-"))
    assert (kept / "summary.json").is_file() and (kept / "pixels.csv").is_file()


def test_al_sim_output_lands_when_out_stayed_as_checked(inputs, monkeypatch):
    monkeypatch.setattr(
        "segforget.analysis.active_learning.simulate_active_learning",
        _fake_simulation(lambda: None),
    )
    folder = inputs / "curves"
    assert run_quietly([*AL_SIM, "--out", folder]).code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["curves.json", "curves.png"]
    assert sorted(p.name for p in inputs.iterdir() if p.name.startswith("curves")) == ["curves"]


def test_check_output_directory_needs_a_folder_under_a_folder(tmp_path):
    from segforget.io import check_output_directory

    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"parent of `--out` .* got the file '.*afile'"):
        check_output_directory(
            tmp_path / "afile" / "sub", overwrite=True, command="x", marker="m", names=("m",)
        )


def test_directory_at_out_parent_file_is_named(inputs, finished_run):
    (inputs / "afile").write_text("x")
    result = run_quietly(["label-issues", finished_run, "--out", "afile/issues"])
    assert_user_error(result, "parent of `--out`", "to be a folder", "'afile'")


# ------------------------------------------------------------------------------------------ select
def test_select_checks_both_outputs_before_writing(inputs, finished_run):
    (inputs / "hw.png").mkdir()
    result = run_quietly(["select", finished_run, "--n", "2", "--out", "hw.csv", "--force"])
    assert_user_error(result, "'hw.png'", "got a folder", "choose another --out")
    assert ".tmp" not in result.stderr
    assert not (inputs / "hw.csv").exists()


def test_select_directory_at_out_names_the_users_path(inputs, finished_run):
    (inputs / "adir.csv").mkdir()
    result = run_quietly(["select", finished_run, "--out", "adir.csv", "--force"])
    assert_user_error(result, "'adir.csv'", "got a folder")
    assert ".tmp" not in result.stderr


def test_select_parent_of_out_is_a_file(inputs, finished_run):
    (inputs / "afile").write_text("x")
    result = run_quietly(["select", finished_run, "--out", "afile/s.csv"])
    assert_user_error(result, "parent of `--out`", "to be a folder", "got the file 'afile'")
    assert (inputs / "afile").read_text() == "x"


def test_write_selection_failure_leaves_neither_file(inputs, finished_run, monkeypatch):
    from segforget.analysis import active_learning
    from segforget.analysis.active_learning import select_from_run, write_selection

    rows = select_from_run(finished_run, strategy="switch", n=2)
    csv_path, figure_path = inputs / "sel.csv", inputs / "sel.png"

    def broken_figure(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(active_learning, "plot_selection", broken_figure)
    with pytest.raises(OSError, match="disk full"):
        write_selection(finished_run, rows, csv_path=csv_path, figure_path=figure_path)
    assert sorted(p.name for p in inputs.iterdir()) == []

    csv_path.write_text("old")
    with pytest.raises(OSError, match="disk full"):
        write_selection(finished_run, rows, csv_path=csv_path, figure_path=figure_path)
    assert csv_path.read_text() == "old"
    assert sorted(p.name for p in inputs.iterdir()) == ["sel.csv"]

    figure_path.mkdir()
    with pytest.raises(IsADirectoryError, match=r"sel.png' to be a file to write, got a folder"):
        write_selection(finished_run, rows, csv_path=csv_path, figure_path=figure_path)
    assert csv_path.read_text() == "old"


# -------------------------------------------------------------------------- synth --preview-only
def test_preview_only_refuses_an_existing_png_without_force(inputs):
    (inputs / "existing.png").write_bytes(b"mine")
    result = run_quietly(["synth", "--preview-only", "existing.png"])
    assert_user_error(result, "existing.png", "not to exist", "--force")
    assert (inputs / "existing.png").read_bytes() == b"mine"
    result = run_quietly(["synth", "--preview-only", "existing.png", "--force"])
    assert result.code == 0, result.stderr
    assert (inputs / "existing.png").read_bytes()[:4] == b"\x89PNG"


def test_preview_only_directory_names_the_users_path(inputs):
    (inputs / "pdir.png").mkdir()
    result = run_quietly(["synth", "--preview-only", "pdir.png", "--force"])
    assert_user_error(result, "'pdir.png'", "got a folder", "--preview-only")
    assert ".tmp" not in result.stderr


# -------------------------------------------------------------------------- import-segy .npy labels
@pytest.mark.parametrize(
    "edit,fragment",
    [
        (lambda labels: labels + 0.5, "non-integral values"),
        (lambda labels: np.where(labels == 0, np.nan, labels), "NaN or infinite"),
        (lambda labels: np.where(labels == 0, np.inf, labels), "NaN or infinite"),
    ],
    ids=["fractions", "nan", "inf"],
)
def test_import_segy_refuses_float_labels_that_are_not_whole(inputs, segy_pair, edit, fragment):
    seismic, labels_path = segy_pair
    bad = inputs / "float_labels.npy"
    np.save(bad, edit(np.load(labels_path).astype(np.float32)))
    result = run_quietly(["import-segy", seismic, "--labels", bad, "--out", "o"])
    assert_user_error(result, "float_labels.npy", "integer class labels", fragment)
    assert not (inputs / "o").exists()


def test_import_segy_accepts_whole_float_labels(inputs, segy_pair):
    seismic, labels_path = segy_pair
    labels = np.load(labels_path)
    np.save(inputs / "whole.npy", labels.astype(np.float32))
    result = run_quietly(["import-segy", seismic, "--labels", "whole.npy", "--out", "o"])
    assert result.code == 0, result.stderr
    np.testing.assert_array_equal(np.load(inputs / "o" / "train" / "train_labels.npy"), labels)
