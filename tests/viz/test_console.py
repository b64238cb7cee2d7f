"""The console of the commands' progress lines: one line per message in a log file."""

from __future__ import annotations

import io

from rich.console import Console

from segforget.viz.console import log_console


def test_a_long_line_stays_one_line_in_a_file():
    line = "report: " + "/very/long/run/directory" * 8 + "/report.html"
    assert len(line) > 150
    out = io.StringIO()
    log_console(file=out).print(line)
    assert out.getvalue() == line + "\n"


def test_a_plain_console_would_cut_it():
    """The reference: rich's default console breaks the same line at 80 columns."""
    line = "x " * 60
    out = io.StringIO()
    Console(file=out, width=80).print(line)
    assert len(out.getvalue().splitlines()) == 2
    out = io.StringIO()
    log_console(file=out).print(line)
    assert len(out.getvalue().splitlines()) == 1
