"""Nothing loaded from disk runs code: crafted checkpoints and .npy files are refused."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import assert_user_error, run_cli


class _Exploit:
    """Unpickling this object calls ``os.makedirs(marker)``: proof that code ran on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _sanity_check_exploit_works(path: Path, marker: Path, *, raw: bool = False) -> None:
    # The crafted file does run code when loaded the unsafe way, so the test below can fail.
    if raw:
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.is_dir()
    marker.rmdir()


@pytest.mark.parametrize("container", ["torch-zip", "raw-pickle", "inside-state"])
def test_crafted_checkpoint_is_refused_and_runs_nothing(finished_run, tmp_path, container):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    marker = tmp_path / "pwned"
    checkpoint = run / "checkpoints" / "last.pt"
    if container == "torch-zip":
        torch.save({"model": _Exploit(marker)}, checkpoint)
    elif container == "raw-pickle":
        checkpoint.write_bytes(pickle.dumps({"model": _Exploit(marker)}))
    else:
        # A real checkpoint with one hostile value deep inside.
        state = torch.load(checkpoint, weights_only=True)
        state["history"].append(_Exploit(marker))
        torch.save(state, checkpoint)
    _sanity_check_exploit_works(checkpoint, marker, raw=container == "raw-pickle")
    before = checkpoint.read_bytes()

    result = run_cli(["train", "--out", run, "--resume"])

    assert_user_error(result, "checkpoint", "last.pt")
    assert not marker.exists()
    assert checkpoint.read_bytes() == before


def test_checkpoint_loader_refuses_pickled_code(tmp_path):
    from segforget.train.checkpoint import load_checkpoint

    marker = tmp_path / "pwned"
    path = tmp_path / "last.pt"
    torch.save({"epoch": 1, "x": _Exploit(marker)}, path)
    with pytest.raises(ValueError, match=r"Expected .*checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_object_npy_is_refused_without_unpickling(tmp_path):
    from segforget.data.f3 import load_npy

    marker = tmp_path / "pwned"
    path = tmp_path / "labels.npy"
    np.save(path, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="readable .npy array"):
        load_npy(path, mmap=False)
    with pytest.raises(ValueError, match="readable .npy array"):
        load_npy(path)
    assert not marker.exists()


def test_store_attributes_are_json_not_pickle(finished_run):
    # Every file of a dynamics store is JSON metadata or a compressed numeric chunk.
    import json

    for path in (finished_run / "dynamics").rglob("*"):
        if path.name == "zarr.json":
            json.loads(path.read_text())
        elif path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), path  # pickle protocol header
