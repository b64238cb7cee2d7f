"""A damaged config.yaml or metrics.json of a run is one clear line in every command that
reads runs (load_run is the one place that reads them)."""

from __future__ import annotations

import shutil

import pytest

from helpers import assert_user_error, run_cli
from segforget.train import load_run

DAMAGE = {
    "config.yaml": [
        ("model: [unclosed\n", "damaged file"),
        ("- 1\n- 2\n", "hold a mapping, got list"),
        (b"\xff\xfe\x00", "damaged file"),
        ("data: 3\n", "`data` section"),
    ],
    "metrics.json": [
        ('{"test": {"miou": 0.5,', "damaged file"),
        ("[]", "hold a mapping, got list"),
    ],
}
CASES = [(name, text, fragment) for name, cases in DAMAGE.items() for text, fragment in cases]


def _damaged_copy(finished_run, tmp_path, name, text):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    target = run / name
    target.write_bytes(text if isinstance(text, bytes) else text.encode())
    return run, target


@pytest.mark.parametrize(("name", "text", "fragment"), CASES)
def test_load_run_names_the_damaged_file(finished_run, tmp_path, name, text, fragment):
    run, target = _damaged_copy(finished_run, tmp_path, name, text)
    with pytest.raises(ValueError, match=fragment) as caught:
        load_run(run)
    assert str(target) in str(caught.value)
    fix = "--force" if name == "config.yaml" else "--resume"
    assert fix in str(caught.value)


@pytest.mark.parametrize("command", [["select", "--n", "2"], ["label-issues"], ["analyze"]])
def test_commands_report_a_damaged_run_in_one_line(finished_run, tmp_path, command):
    run, _ = _damaged_copy(finished_run, tmp_path, "metrics.json", "[]")
    assert_user_error(run_cli([command[0], run, *command[1:]]), "metrics.json", "mapping")


def test_analyze_checks_store_checksums_before_reading_sections(finished_run, tmp_path):
    """Analysis reads stores section by section (ranges skip the checksums), so it verifies
    each store once first: a silently changed value is refused, not analysed."""
    import zarr

    from segforget.dynamics import ForgettingStats

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    store = run / "dynamics" / "epoch" / "train_inline"
    changed = ForgettingStats.load(store).switch_events.copy()
    changed[0] += 1
    shutil.rmtree(store / "switch_events")
    group = zarr.open_group(store, mode="a")
    group.create_array("switch_events", data=changed, config={"write_empty_chunks": True})
    result = run_cli(["analyze", run, "--no-figures", "--quiet"])
    assert_user_error(result, "checksum mismatch in 'switch_events'", "train_inline")
    assert not (run / "analysis").exists()
