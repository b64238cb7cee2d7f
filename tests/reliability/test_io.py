"""segforget.io: a failure or a kill at any moment leaves the old content or the new, never half."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from segforget.io import (
    atomic_directory,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    is_temporary,
    to_jsonable,
)


class Boom(Exception):
    """Raised inside a writer block to simulate a failure half way."""


def _only_target(directory: Path, name: str) -> None:
    assert sorted(p.name for p in directory.iterdir()) == [name]


# ------------------------------------------------------------------ failures inside the block
def test_atomic_path_keeps_old_content_when_the_writer_fails(tmp_path):
    target = tmp_path / "data.npy"
    np.save(target, np.arange(5))
    with pytest.raises(Boom), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".npy" and is_temporary(tmp)
        tmp.write_bytes(b"half of a new file")
        raise Boom
    np.testing.assert_array_equal(np.load(target), np.arange(5))
    _only_target(tmp_path, "data.npy")


def test_atomic_path_writes_new_content_with_plain_permissions(tmp_path):
    target = tmp_path / "sub" / "data.npy"
    with atomic_path(target) as tmp:
        np.save(tmp, np.arange(3))
        assert not target.exists()  # nothing visible before the block ends
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    _only_target(target.parent, "data.npy")


def test_atomic_path_on_keyboard_interrupt(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("new")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    _only_target(tmp_path, "a.txt")


def test_atomic_write_json_fails_before_touching_the_file(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    _only_target(tmp_path, "m.json")


def test_atomic_write_json_is_strict_json(tmp_path):
    target = tmp_path / "m.json"
    value = {"nan": float("nan"), "inf": np.float32(np.inf), "arr": np.arange(3), "t": (1, 2.5)}
    atomic_write_json(target, value)
    text = target.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nan": None, "inf": None, "arr": [0, 1, 2], "t": [1, 2.5]}
    assert to_jsonable(np.float64(2.5)) == 2.5 and math.isfinite(to_jsonable(np.int64(3)))


def test_atomic_write_text_and_bytes_replace_whole_files(tmp_path):
    target = tmp_path / "t.txt"
    atomic_write_text(target, "é" * 10)
    assert target.read_text(encoding="utf-8") == "é" * 10
    atomic_write_bytes(target, b"x")
    assert target.read_bytes() == b"x"
    _only_target(tmp_path, "t.txt")


def test_atomic_directory_keeps_the_old_directory_when_the_block_fails(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(Boom), atomic_directory(target, overwrite=True) as tmp:
        (tmp / "a").write_text("new")
        (tmp / "b").write_text("new")
        raise Boom
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert (target / "a").read_text() == "old"
    _only_target(tmp_path, "store")


def test_atomic_directory_replaces_the_whole_directory(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "stale").write_text("old")
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "a").write_text("new")
        assert not (target / "a").exists()
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask
    _only_target(tmp_path, "store")


def test_atomic_directory_without_atomic_exchange(tmp_path, monkeypatch):
    # Systems without renameat2 (macOS, other file systems) take the two-rename path.
    import segforget.io as io

    monkeypatch.setattr(io, "_exchange", lambda first, second: False)
    target = tmp_path / "store"
    target.mkdir()
    (target / "stale").write_text("old")
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "a").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    _only_target(tmp_path, "store")


def test_atomic_directory_replaces_a_file(tmp_path):
    target = tmp_path / "store"
    target.write_text("a file where the directory goes")
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "a").write_text("new")
    assert (target / "a").read_text() == "new"
    _only_target(tmp_path, "store")


def test_atomic_directory_refuses_an_existing_target(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    with pytest.raises(FileExistsError, match=r"Expected `.*store` not to exist; pass overwrite"):
        with atomic_directory(target):
            pass  # pragma: no cover
    assert list(target.iterdir()) == []
    _only_target(tmp_path, "store")


def test_atomic_directory_keeps_its_output_when_the_target_appears_meanwhile(tmp_path):
    target = tmp_path / "store"
    with pytest.raises(FileExistsError, match="it appeared while") as caught:
        with atomic_directory(target) as tmp:
            (tmp / "a").write_text("new")
            precious = target
            precious.mkdir()
            (precious / "mine").write_text("keep")
    kept = tmp_path / f"store.unsaved-{os.getpid()}"
    assert str(kept) in str(caught.value) and "Nothing was replaced" in str(caught.value)
    assert (kept / "a").read_text() == "new"
    assert sorted(p.name for p in target.iterdir()) == ["mine"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store", kept.name]


def test_atomic_directory_before_replace_can_refuse_and_keep_the_output(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "old").write_text("old")
    calls = []

    def refuse():
        calls.append("refuse")
        raise ValueError("Expected `store` to hold only outputs; choose another --out")

    with pytest.raises(ValueError, match=r"choose another --out\. Nothing was replaced"):
        with atomic_directory(target, overwrite=True, before_replace=refuse) as tmp:
            (tmp / "a").write_text("new")
            assert calls == []  # the check runs after the block, before the swap
    assert calls == ["refuse"]
    assert (target / "old").read_text() == "old" and not (target / "a").exists()
    assert (tmp_path / f"store.unsaved-{os.getpid()}" / "a").read_text() == "new"
    # A check that passes lets the output land as usual.
    with atomic_directory(target, overwrite=True, before_replace=lambda: None) as tmp:
        (tmp / "a").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["a"]


def test_is_temporary_names():
    assert is_temporary(".last.k2j3h4.tmp.pt")
    assert is_temporary(".train_inline.abcd.tmp")
    assert is_temporary("/x/.store.old-123")
    assert not is_temporary("last.pt")
    assert not is_temporary("train_inline")
    assert not is_temporary(".hidden")


# ------------------------------------------------------------------ SIGKILL while writing
_FILE_WRITER = textwrap.dedent(
    """
    import sys
    from segforget.io import atomic_write_bytes

    target, size = sys.argv[1], int(sys.argv[2])
    version = 0
    while True:
        version += 1
        tag = version.to_bytes(8, "little")
        atomic_write_bytes(target, tag + bytes([version % 251]) * size + tag)
    """
)

_DIRECTORY_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from segforget.io import atomic_directory

    target, size = Path(sys.argv[1]), int(sys.argv[2])
    version = 0
    while True:
        version += 1
        with atomic_directory(target, overwrite=True) as tmp:
            for name in ("a", "b", "c"):
                (tmp / name).write_bytes(version.to_bytes(8, "little") * (size // 8))
    """
)

SIZE = 4 << 20


def _check_file(path: Path) -> int:
    data = path.read_bytes()
    assert len(data) == SIZE + 16, len(data)
    head, tail = data[:8], data[-8:]
    assert head == tail
    version = int.from_bytes(head, "little")
    assert data[8:-8] == bytes([version % 251]) * SIZE
    return version


class _Replaced(Exception):
    """The directory was replaced while it was being read: read the new one."""


def _check_directory(path: Path) -> int:
    # Read through one directory handle; a reader that finds the handle no longer at ``path``
    # (replaced meanwhile, the old one being deleted) reads again. Anything else is a failure.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            names = sorted(os.listdir(fd))
            contents = set()
            for name in ("a", "b", "c"):
                handle = os.open(name, os.O_RDONLY, dir_fd=fd)
                with os.fdopen(handle, "rb") as file:
                    contents.add(file.read())
        except FileNotFoundError:
            names = None
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise _Replaced
    finally:
        os.close(fd)
    assert names == ["a", "b", "c"]
    assert len(contents) == 1
    content = contents.pop()
    assert len(content) == SIZE // 8 * 8
    version = int.from_bytes(content[:8], "little")
    assert content == version.to_bytes(8, "little") * (SIZE // 8)
    return version


def _kill_while_writing(script: str, target: Path, check, *, rounds: int) -> list[int]:
    """Start the writer ``rounds`` times; kill it with SIGKILL the moment a temporary appears.

    While it runs the target is read and checked too (readers never see half a file).
    """
    versions = []
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(target), str(SIZE)], stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 60
            seen_versions = set()
            # Let it complete a few replacements, reading the target meanwhile.
            while len(seen_versions) < 3 and time.monotonic() < deadline:
                assert proc.poll() is None, proc.stderr.read().decode()
                try:
                    seen_versions.add(check(target))
                except (FileNotFoundError, _Replaced):
                    pass  # the first version is not there yet, or it changed while read
            # Then kill it mid-write: when its temporary file or directory exists.
            while time.monotonic() < deadline:
                if any(is_temporary(p) for p in target.parent.iterdir()):
                    break
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        versions.append(check(target))
        # Only the target and temporaries that readers skip may remain.
        strays = [p.name for p in target.parent.iterdir() if p != target]
        assert all(is_temporary(name) for name in strays), strays
    return versions


def test_sigkill_during_atomic_file_writes_leaves_a_complete_file(tmp_path):
    target = tmp_path / "out" / "big.bin"
    target.parent.mkdir()
    versions = _kill_while_writing(_FILE_WRITER, target, _check_file, rounds=3)
    assert all(v >= 1 for v in versions)


def test_sigkill_during_atomic_directory_writes_leaves_a_complete_directory(tmp_path):
    target = tmp_path / "out" / "store"
    target.parent.mkdir()
    versions = _kill_while_writing(_DIRECTORY_WRITER, target, _check_directory, rounds=3)
    assert all(v >= 1 for v in versions)


_KILL_BETWEEN_RENAMES = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import segforget.io as io

    target = Path(sys.argv[1])
    real_replace = os.replace

    def replace_then_die(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if Path(src) == target:  # the old directory was just moved away
            os.kill(os.getpid(), signal.SIGKILL)

    io.os.replace = replace_then_die
    with io.atomic_directory(target, overwrite=True) as tmp:
        (tmp / "a").write_text("new")
    """
)


def test_kill_right_after_the_first_rename_of_a_directory_replacement(tmp_path):
    # Deterministic worst case of a two-rename replacement: killed between the renames.
    target = tmp_path / "store"
    target.mkdir()
    (target / "a").write_text("old")
    subprocess.run([sys.executable, "-c", _KILL_BETWEEN_RENAMES, str(target)], check=False)
    assert target.is_dir()
    assert (target / "a").read_text() in ("old", "new")
