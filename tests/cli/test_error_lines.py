"""Every failure the user can fix is one line on stderr with exit code 2: parser errors and
operating-system errors included; paths of atomic writers' temporaries name the user's path."""

from __future__ import annotations

import errno

import pytest

from helpers import assert_user_error, run_cli
from segforget.cli._app import _one_line, user_path


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["analyze", "x", "--k", "abc"], ["--k", "valid integer", "segforget analyze --help"]),
        (["nosuchcommand"], ["No such command 'nosuchcommand'", "segforget --help"]),
        (["env", "extra"], ["unexpected extra argument", "segforget env --help"]),
        (["data", "info"], ["Missing option '--data'", "segforget data info --help"]),
        (["select", "x", "--nope"], ["No such option", "--nope"]),
    ],
)
def test_parser_errors_are_one_line(args, fragments):
    assert_user_error(run_cli(args), *fragments)


def test_help_still_exits_zero_and_no_arguments_show_help():
    assert run_cli(["--help"]).code == 0
    assert "Usage" in run_cli(["select", "--help"]).stdout
    bare = run_cli([])
    assert bare.code == 2 and "Commands" in bare.stdout and bare.stderr == ""


def test_os_errors_are_one_line_with_the_fix(tmp_path):
    long_name = tmp_path / ("x" * 300)
    assert_user_error(
        run_cli(["synth", "--preset", "small", "--out", long_name]),
        "File name too long",
        "choose a shorter path",
    )


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (errno.EROFS, "choose a writable location"),
        (errno.ENOSPC, "free disk space or choose another location"),
        (errno.ENAMETOOLONG, "choose a shorter path"),
    ],
)
def test_os_error_line_names_the_users_path_and_the_fix(code, fix):
    exc = OSError(code, "Some failure", "/data/out/.report.ab12_xYz.tmp.html")
    assert _one_line(exc) == f"Some failure: /data/out/report.html; {fix}"


def test_user_path_maps_temporaries_back():
    assert user_path("/a/.hw.75bt2r83.tmp.png") == "/a/hw.png"
    assert user_path("/a/.label_issues.k2j4h5g6.tmp/pixels.csv") == "/a/label_issues/pixels.csv"
    assert user_path("/a/.hidden/file.tmp") == "/a/.hidden/file.tmp"  # not a temporary name
    assert user_path(b"/a/b") == "/a/b"
