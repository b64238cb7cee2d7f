"""The typer application and the one place where user errors become one line and exit code 2."""

from __future__ import annotations

import sys

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


def _one_line(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)):
        if exc.filename and exc.strerror:
            text = f"{exc.strerror}: {exc.filename}"
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``segforget`` command."""
    try:
        app(args=argv, standalone_mode=True)
    except USER_ERRORS as exc:
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
