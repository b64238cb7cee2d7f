"""The console the commands print their progress lines to."""

from __future__ import annotations

from typing import IO

from rich.console import Console


def log_console(*, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """A rich console that never cuts a text line at the terminal width.

    Piped into a log file, rich assumes 80 columns and breaks longer lines, which splits paths
    and result lines in two. With soft wrapping a message stays one line; a terminal still
    folds it on screen.

    Args:
        stderr: print to standard error instead of standard output.
        file: print to this file instead (tests).
    """
    return Console(stderr=stderr, file=file, soft_wrap=True)
