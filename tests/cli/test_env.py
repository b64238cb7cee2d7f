"""``segforget env``: the facts a bug report needs, read from the installed packages."""

from __future__ import annotations

import sys
from importlib import metadata

import torch

from helpers import run_cli
from segforget.dynamics import _native


def test_env_reports_versions_device_and_tracker_kernel():
    result = run_cli(["env"])
    assert result.code == 0, result.stderr
    lines = dict(
        (key.strip(), value.strip())
        for key, value in (line.split(": ", 1) for line in result.stdout.splitlines())
    )
    assert lines["python"] == sys.version.split()[0]
    assert lines["torch"] == metadata.version("torch")
    assert lines["numpy"] == metadata.version("numpy")
    assert lines["torch threads"] == str(torch.get_num_threads())
    assert lines["device"].startswith("cuda" if torch.cuda.is_available() else "cpu")
    expected = "fused C kernel" if _native.available() else "torch path"
    assert lines["tracker kernel (CPU)"].startswith(expected)
