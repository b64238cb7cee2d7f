"""The typer application and the one place where user errors become one line and exit code 2."""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path

import typer

app = typer.Typer(
    name="segforget",
    help=(
        "Explain and improve semantic-segmentation networks through per-pixel learning dynamics "
        "(forgetting events, learning events, prediction switches)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


#: The arguments of the running ``segforget`` call (set by :func:`main`).
_ARGS: list[str] | None = None


def invoked_command() -> list[str]:
    """The command line being run, ``["segforget", *args]``, for the records a run writes."""
    return ["segforget", *(sys.argv[1:] if _ARGS is None else _ARGS)]


@app.callback()
def _root() -> None:
    """Explain and improve segmentation networks through per-pixel learning dynamics."""


#: Exceptions that mean "the user asked for something that cannot be done": reported as one line.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return an Exit(2) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


#: What the user can do about an operating-system error (the machine's state, not a bug).
_OS_FIXES: dict[int, str] = {
    errno.EROFS: "choose a writable location",
    errno.EACCES: "choose a location you may write to",
    errno.EPERM: "choose a location you may write to",
    errno.ENOSPC: "free disk space or choose another location",
    errno.EDQUOT: "free disk space or choose another location",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EEXIST: "remove it or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "remove the folder or choose another path",
}

#: Temporary names of segforget.io: ``.NAME.XXXXXXXX.tmp[.SUFFIX]``.
_TEMPORARY = re.compile(r"^\.(?P<stem>.+)\.[A-Za-z0-9_]{8}\.tmp(?P<suffix>\..*)?$")


def user_path(filename: str | bytes | None) -> str | None:
    """The path the user named for a path an atomic writer was using: every temporary
    component (``.NAME.XXXXXXXX.tmp.SUFFIX``) becomes the target it stands for (NAME.SUFFIX)."""
    if filename is None:
        return None
    text = filename.decode(errors="replace") if isinstance(filename, bytes) else str(filename)
    parts = []
    for part in Path(text).parts:
        match = _TEMPORARY.match(part)
        parts.append(match["stem"] + (match["suffix"] or "") if match else part)
    return str(Path(*parts)) if parts else text


def _one_line(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.strerror}: {user_path(exc.filename)}"
        if exc.filename2 is not None:
            text += f" -> {user_path(exc.filename2)}"
        fix = _OS_FIXES.get(exc.errno or 0)
        if fix:
            text += f"; {fix}"
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return " ".join(text.split())


#: Errors of the command-line parser (wrong option, type, missing argument), from typer's click
#: (vendored by recent typer, the click package by older ones).
_CLICK_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _usage_line(exc: Exception) -> str:
    """A command-line usage error as one line, with where to find the valid usage."""
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else "segforget"
    return f"{message} (see `{command} --help`)"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``segforget`` command."""
    global _ARGS
    _ARGS = None if argv is None else [str(a) for a in argv]
    try:
        code = app(args=argv, prog_name="segforget", standalone_mode=False)
    except _CLICK_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(2)  # no arguments: the help text has been printed
        typer.echo(f"error: {_usage_line(exc)}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except (*USER_ERRORS, OSError) as exc:
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
