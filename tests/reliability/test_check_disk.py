"""scripts/check-disk.sh: the installation's disk check says clearly when the disk is too full."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check-disk.sh"


def _check(directory: Path, *thresholds: float) -> subprocess.CompletedProcess:
    args = ["bash", str(SCRIPT), str(directory), *(str(t) for t in thresholds)]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def _free_gib(directory: Path) -> float:
    return shutil.disk_usage(directory).free / 2**30


def test_too_little_room_fails_with_one_line_naming_the_free_space(tmp_path):
    need = int(_free_gib(tmp_path)) + 2
    result = _check(tmp_path, need, need + 1)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert f"needs about {need} GiB" in lines[0]
    reported = float(re.search(r"only ([0-9.]+) GiB is free", lines[0]).group(1))
    assert abs(reported - _free_gib(tmp_path)) < 0.2


def test_little_room_warns_and_goes_on(tmp_path):
    warn = int(_free_gib(tmp_path)) + 2
    result = _check(tmp_path, 0, warn)
    assert result.returncode == 0
    assert result.stderr.startswith("warning:")


def test_enough_room_is_silent(tmp_path):
    result = _check(tmp_path, 0, 0)
    assert result.returncode == 0
    assert result.stderr == "" and result.stdout == ""


def test_unreadable_directory_does_not_block_the_installation(tmp_path):
    result = _check(tmp_path / "missing", 6, 8)
    assert result.returncode == 0
    assert "cannot read the free space" in result.stderr
