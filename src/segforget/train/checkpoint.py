"""Checkpoints that load with ``torch.load(weights_only=True)``: tensors and plain values only.

A checkpoint is a dict of state dicts (model, optimizer, scheduler, trackers, method), the
training progress (epoch, history) and every random state that decides what happens next
(torch, numpy, python ``random``, the data-order and augmentation generators), so that a resumed
run ends with the same results as an uninterrupted one on CPU.

:class:`CheckpointWriter` writes them in a background thread (the state is first copied to host
memory), so an epoch does not wait for gigabytes of tracker state to reach the disk.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segforget.io import atomic_path

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "host_copy",
    "CheckpointWriter",
]


def capture_rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Random states of torch, numpy, python ``random`` and the named generators (tensors/ints)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss": gauss},
        "generators": {name: gen.get_state() for name, gen in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Restore what :func:`capture_rng_state` returned (generators are updated in place)."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    for name, gen in generators.items():
        gen.set_state(state["generators"][name])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` atomically (a kill leaves the previous checkpoint intact)."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def host_copy(value: Any, *, copy: bool = True) -> Any:
    """``value`` with every tensor in host memory and every dict, list and tuple rebuilt, so
    later changes to the original (training steps, appended history) do not reach it.

    Args:
        copy: copy tensors that are already on the host too (False: only move device tensors,
            for tensors that are fresh copies anyway, e.g. a tracker's ``state_dict()``).
    """
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.device.type != "cpu":
            return value.to("cpu")
        return value.clone() if copy else value
    if isinstance(value, dict):
        return {key: host_copy(item, copy=copy) for key, item in value.items()}
    if isinstance(value, list):
        return [host_copy(item, copy=copy) for item in value]
    if isinstance(value, tuple):
        return tuple(host_copy(item, copy=copy) for item in value)
    return value


class CheckpointWriter:
    """Writes checkpoints one epoch at a time, in a background thread or in the caller's.

    ``save`` first waits for the previous write (so at most one is in flight and files are
    written in epoch order), then starts writing; ``wait`` blocks until the write is done and
    re-raises its error, if any. The checkpoints handed to ``save`` must not change afterwards
    (pass :func:`host_copy` results). The thread is not a daemon: an interpreter that exits
    (an interrupted run, too) finishes the write first, and every file is written atomically,
    so a kill mid-write leaves the previous checkpoint intact.

    Example:
        >>> writer = CheckpointWriter()
        >>> writer.save([(path, host_copy(trainer.state_dict()))])  # doctest: +SKIP
        >>> writer.wait()  # doctest: +SKIP
    """

    def __init__(self, *, background: bool = True) -> None:
        self.background = background
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, files: Sequence[tuple[str | Path, dict[str, Any]]]) -> None:
        """Write each (path, checkpoint) of ``files`` atomically, in order."""
        self.wait()
        files = list(files)
        if not self.background:
            self._write(files)
            return
        self._thread = threading.Thread(
            target=self._write, args=(files,), name="segforget-checkpoint", daemon=False
        )
        self._thread.start()

    def wait(self) -> None:
        """Block until the write in flight (if any) is done; raise its error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _write(self, files: list[tuple[str | Path, dict[str, Any]]]) -> None:
        try:
            for path, checkpoint in files:
                save_checkpoint(path, checkpoint)
        except BaseException as error:  # noqa: BLE001 - handed to the caller by wait()
            if not self.background:
                raise
            self._error = error


def load_checkpoint(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no code runs while loading).

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: the file is damaged, not a checkpoint, or holds objects that only an unsafe
            (code-running) unpickling could restore; nothing of it is executed.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected a checkpoint at {str(path)!r}, got no such file")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = " ".join(str(exc).split("\n")[-3:-2] or [type(exc).__name__]).strip()
        raise ValueError(
            f"Expected `{path}` to be a checkpoint of tensors and plain values, got one that only "
            f"unsafe unpickling could load ({reason[:200]}); it was not loaded. Restore a "
            "checkpoint written by segforget train, or start again with --force"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any read failure means a damaged file
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(
            f"Expected `{path}` to be a readable checkpoint, got a damaged file ({reason}); "
            "restore it from a copy, or start again with --force"
        ) from None
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"Expected `{path}` to hold a checkpoint dict, got {type(checkpoint).__name__}"
        )
    return checkpoint
