"""Atomic file writing: a kill at any moment leaves the old file or the new one, never half.

Every file the project writes goes through these helpers: the content is written to a temporary
name in the same directory, flushed to disk, then renamed over the target (``os.replace`` is
atomic on POSIX within one file system). :func:`cache_dir` is where generated files that can
be rebuilt (synthetic surveys, the compiled tracker kernel) are kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_path",
    "atomic_directory",
    "check_output_file",
    "check_output_directory",
    "to_jsonable",
    "is_temporary",
    "cache_dir",
]


def cache_dir() -> Path:
    """Root of segforget's cache: ``$SEGFORGET_CACHE``, else ``$XDG_CACHE_HOME/segforget``,
    else ``~/.cache/segforget``."""
    configured = os.environ.get("SEGFORGET_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "segforget"


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a temporary of these helpers (readers must skip it).

    A writer killed mid-write (SIGKILL, power loss) leaves its temporary behind: a hidden name
    ``.NAME.XXXXXXXX.tmp[.SUFFIX]`` (file or directory) or ``.NAME.old-PID`` (a directory being
    replaced on systems without an atomic exchange). The target itself is always intact.
    """
    name = Path(path).name
    return name.startswith(".") and (".tmp" in name or ".old-" in name)


@functools.lru_cache(maxsize=1)
def _renameat2() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the system or file system cannot, so the caller falls back to two renames.
    """
    function = _renameat2()
    if function is None:
        return False
    result = function(  # type: ignore[operator]
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path; on success it is renamed to ``path``, on error removed.

    Use it for writers that want a file name (``np.save``, ``torch.save``, ``fig.savefig``).
    The temporary name keeps the target's suffix, so writers that look at it behave.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    before_replace: Callable[[], None] | None = None,
) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` as a whole when the block succeeds.

    An existing ``path`` is swapped with the new directory in one atomic step where the system
    supports it (Linux), so a kill at any moment leaves the old or the new directory; elsewhere
    two renames leave a short window in which the old one sits at ``.NAME.old-PID``.

    ``path`` is checked again once the block has finished (it may have changed during a long
    job): if it now exists and ``overwrite`` is False, or ``before_replace`` (e.g. the command's
    :func:`check_output_directory`) raises, nothing is replaced and the finished output is kept
    at ``NAME.unsaved-PID`` next to ``path``; the error names that folder.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"Expected `{target}` not to exist; pass overwrite (--force) to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_current_umask())
        _recheck_target(target, tmp, overwrite=overwrite, before_replace=before_replace)
        if target.exists() and _exchange(tmp, target):
            # One atomic step; tmp now holds the old directory.
            _remove(tmp)
        elif target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            _remove(old)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _recheck_target(
    target: Path, tmp: Path, *, overwrite: bool, before_replace: Callable[[], None] | None
) -> None:
    """Check ``target`` again before it is replaced by the finished ``tmp``; on failure move
    ``tmp`` to ``NAME.unsaved-PID`` and raise the error of the check with that folder named."""
    try:
        if target.exists() and not overwrite:
            raise FileExistsError(
                f"Expected `{target}` not to exist; it appeared while the output was being made"
            )
        if before_replace is not None:
            before_replace()
    except (OSError, ValueError) as error:
        kept = target.with_name(f"{target.name}.unsaved-{os.getpid()}")
        os.replace(tmp, kept)
        _fsync_dir(target.parent)
        message = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
        raise type(error)(
            f"{message.rstrip('.')}. Nothing was replaced; the new output is kept at {str(kept)!r}"
        ) from error


def _check_parent(path: Path, option: str) -> None:
    """Raise if the nearest existing ancestor of ``path`` is a file (a folder cannot go there)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"Expected the parent of `{option}` {str(path)!r} to be a folder, got the "
                    f"file {str(parent)!r}; choose another {option}"
                )
            return


def check_output_file(
    path: str | os.PathLike[str],
    *,
    overwrite: bool,
    option: str = "--out",
    force: str = "--force",
) -> None:
    """Check, before any work, that ``path`` can be written as a file.

    Args:
        path: the file to write.
        overwrite: whether an existing file may be replaced.
        option: how the messages name the option that gave ``path``.
        force: how the messages name the option that allows replacing.

    Raises:
        NotADirectoryError: a parent of ``path`` is a file.
        IsADirectoryError: ``path`` is a folder (never replaced, whatever ``overwrite``).
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    target = Path(path)
    _check_parent(target, option)
    if target.is_dir():
        raise IsADirectoryError(
            f"Expected {str(target)!r} to be a file to write, got a folder; choose another {option}"
        )
    if target.exists() and not overwrite:
        raise FileExistsError(f"Expected `{target}` not to exist; pass {force} to replace it")


def _unexpected_entry(directory: Path, names: frozenset[str]) -> str | None:
    """The first entry under ``directory`` (relative, POSIX) that is not one of ``names``
    (relative file paths) or a folder above one of them; None when there is none."""
    folders = {parent.as_posix() for name in names for parent in Path(name).parents} - {"."}
    unreadable: list[OSError] = []
    for root, dirs, files in os.walk(directory, onerror=unreadable.append):
        for entry in sorted(dirs):
            relative = (Path(root) / entry).relative_to(directory).as_posix()
            if relative not in folders or (Path(root) / entry).is_symlink():
                return relative
        for entry in sorted(files):
            relative = (Path(root) / entry).relative_to(directory).as_posix()
            if relative not in names:
                return relative
    if unreadable:
        return str(Path(unreadable[0].filename or directory).relative_to(directory))
    return None


def check_output_directory(
    path: str | os.PathLike[str],
    *,
    overwrite: bool,
    command: str,
    marker: str,
    names: tuple[str, ...],
    option: str = "--out",
    force: str = "--force",
    marker_fields: dict[str, Any] | None = None,
) -> None:
    """Check, before any work, that ``path`` can become the output folder of ``command``.

    With ``overwrite`` only an earlier output of the same command may be replaced: an empty
    folder, or one that holds ``marker`` and nothing but ``names``. Anything else may hold files
    the user wants to keep, and :func:`atomic_directory` would delete it as a whole.

    Args:
        path: the output folder.
        overwrite: whether an earlier output may be replaced.
        command: the segforget command that writes the folder (for the messages).
        marker: the file (relative path) every output of ``command`` holds.
        names: relative paths (POSIX) of every file ``command`` may write there.
        option: how the messages name the option that gave ``path``.
        force: how the messages name the option that allows replacing.
        marker_fields: fields the ``marker`` (a JSON object) must hold, when other commands
            write the same marker (``synth`` and ``import-segy`` both write survey.json).

    Raises:
        NotADirectoryError: ``path`` or a parent of it is a file (never replaced by a folder).
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: ``overwrite`` is True but ``path`` is not an output of ``command``.
    """
    target = Path(path)
    _check_parent(target, option)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            f"Expected `{option}` to be a folder to write, got the file {str(target)!r}; "
            f"choose another {option}"
        )
    if not target.exists():
        return
    if not overwrite:
        raise FileExistsError(f"Expected `{target}` not to exist; pass {force} to replace it")
    if not any(target.iterdir()):
        return
    extra = _unexpected_entry(target, frozenset(names))
    if extra is not None:
        found = f"which holds {extra!r}"
    elif not (target / marker).is_file():
        found = f"without {marker}"
    else:
        found = _marker_mismatch(target / marker, marker_fields or {})
        if found is None:
            return
    holding = marker + "".join(f" with {k} {v!r}" for k, v in (marker_fields or {}).items())
    raise ValueError(
        f"Expected `{option}` with {force} to be a folder written by segforget {command} "
        f"(holding {holding}), got {str(target)!r} {found}; refusing to delete it, choose "
        f"another {option}"
    )


def _marker_mismatch(path: Path, fields: dict[str, Any]) -> str | None:
    """How the JSON marker at ``path`` differs from ``fields``; None when it holds them all."""
    if not fields:
        return None
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return f"whose {path.name} is not readable JSON"
    if not isinstance(content, dict):
        return f"whose {path.name} is not a JSON object"
    for key, value in fields.items():
        if content.get(key) != value:
            return f"whose {path.name} has {key} {content.get(key)!r}"
    return None


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(value: Any) -> Any:
    """Convert numpy/torch scalars and arrays, tuples and paths to plain JSON values.

    Non-finite floats become ``None`` so that the output is strict JSON.
    """
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON (NaN/inf as null) to ``path`` atomically."""
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
    atomic_write_text(path, text + "\n")
