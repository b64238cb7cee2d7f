"""`segforget report` refuses to replace files, to embed files from outside the run, and to
read a summary.json of the wrong shape: one line, exit code 2, nothing written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from analysis.fake_run import analyzed_fake_run
from helpers import assert_user_error, run_cli
from segforget.viz.report import write_report

SECRET = b"SECRET-CONTENT-OUTSIDE-THE-RUN"


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    return analyzed_fake_run(tmp_path_factory)


@pytest.fixture
def run(analyzed, tmp_path) -> Path:
    """A private copy of the analysed fake run at ``tmp_path/run`` (its summary is edited)."""
    copy = tmp_path / "run"
    shutil.copytree(analyzed[0], copy)
    return copy


def _edit_summary(run: Path, edit) -> None:
    path = run / "analysis" / "summary.json"
    summary = json.loads(path.read_text())
    edit(summary)
    path.write_text(json.dumps(summary))


# ------------------------------------------------------------------------ output file (bug 1)
def test_existing_out_is_refused_without_force(run, tmp_path):
    out = tmp_path / "existing.html"
    out.write_text("keep me")
    assert_user_error(run_cli(["report", run, "--out", out]), "exist", "pass --force")
    assert out.read_text() == "keep me"
    result = run_cli(["report", run, "--out", out, "--force"])
    assert result.code == 0, result.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_existing_default_report_is_refused_without_force(run):
    default = run / "report.html"
    assert run_cli(["report", run]).code == 0
    first = default.read_bytes()
    default.write_text("an earlier report")
    assert_user_error(run_cli(["report", run]), "report.html", "pass --force")
    assert default.read_text() == "an earlier report"
    assert run_cli(["report", run, "--force"]).code == 0
    assert default.read_bytes() == first


@pytest.mark.parametrize("name", ["r.txt", "survey.json", "report", "report.html.bak"])
def test_out_must_be_an_html_file(run, tmp_path, name):
    out = tmp_path / name
    assert_user_error(run_cli(["report", run, "--out", out]), ".html", repr(str(out)))
    assert not out.exists()


def test_out_of_another_kind_is_not_replaced_even_with_force(run, tmp_path):
    survey = tmp_path / "survey.json"
    survey.write_text('{"class_names": ["a"]}')
    assert_user_error(run_cli(["report", run, "--out", survey, "--force"]), ".html")
    assert survey.read_text() == '{"class_names": ["a"]}'


@pytest.mark.parametrize("name", ["r.htm", "R.HTML"])
def test_htm_and_upper_case_suffixes_are_accepted(run, tmp_path, name):
    result = run_cli(["report", run, "--out", tmp_path / name])
    assert result.code == 0, result.stderr
    assert (tmp_path / name).is_file()


def test_library_refuses_existing_out_and_other_suffixes(run, tmp_path):
    out = tmp_path / "r.html"
    out.write_text("keep me")
    existing = r"Expected the report's output file not to exist, got the existing file .*r\.html'"
    with pytest.raises(FileExistsError, match=existing + "; pass --force to replace it"):
        write_report([run], out=out)
    assert out.read_text() == "keep me"
    assert write_report([run], out=out, force=True) == out
    with pytest.raises(ValueError, match=r"Expected `out` to end in \.html or \.htm, got"):
        write_report([run], out=tmp_path / "r.txt")


# ------------------------------------------------------------- files outside the run (bug 2)
def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.png"
    secret.write_bytes(SECRET)
    return secret


def _set_figure(name):
    def edit(summary):
        summary["figures"][0]["file"] = name

    return edit


def _set_section(name):
    def edit(summary):
        files = summary["sections"][0]["files"]
        files[next(iter(files))] = name

    return edit


@pytest.mark.parametrize(
    ("edit", "entry"),
    [
        (_set_figure("../../secret.png"), "figures[0].file"),
        (_set_figure("sections/../../../secret.png"), "figures[0].file"),
        (_set_figure("SECRET_ABSOLUTE"), "figures[0].file"),
        (_set_figure("../../../../../../../../../../etc/hostname"), "figures[0].file"),
        (_set_section("../../secret.png"), "sections[0].files."),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "etc-hostname", "section-image"],
)
def test_summary_paths_outside_the_run_are_refused(run, tmp_path, edit, entry):
    secret = _secret(tmp_path)

    def with_secret(summary):
        edit(summary)
        for fig in summary["figures"]:
            if fig["file"] == "SECRET_ABSOLUTE":
                fig["file"] = str(secret)

    _edit_summary(run, with_secret)
    out = tmp_path / "r.html"
    assert_user_error(run_cli(["report", run, "--out", out]), entry, "outside the run")
    assert not out.exists()


def test_symlink_out_of_the_run_is_refused(run, tmp_path):
    secret = _secret(tmp_path)
    (run / "analysis" / "innocent.png").symlink_to(secret)
    _edit_summary(run, _set_figure("innocent.png"))
    out = tmp_path / "r.html"
    assert_user_error(run_cli(["report", run, "--out", out]), "figures[0].file", "outside")
    assert not out.exists()
    with pytest.raises(ValueError, match=r"Expected `figures\[0\]\.file` .*outside the run"):
        write_report([run], out=out)


def test_symlinked_sections_folder_out_of_the_run_is_refused(run, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.move(run / "analysis" / "sections", outside)
    (run / "analysis" / "sections").symlink_to(outside)
    out = tmp_path / "r.html"
    assert_user_error(run_cli(["report", run, "--out", out]), "sections[0].files.", "outside")
    assert not out.exists()


def test_symlink_within_the_analysis_is_embedded(run, tmp_path):
    first = json.loads((run / "analysis" / "summary.json").read_text())["figures"][0]["file"]
    os.symlink(first, run / "analysis" / "alias.png")
    _edit_summary(run, _set_figure("alias.png"))
    result = run_cli(["report", run, "--out", tmp_path / "r.html"])
    assert result.code == 0, result.stderr


# -------------------------------------------------------------- summary.json shape (bug 3)
def _replace(text: str):
    def write(run: Path) -> None:
        (run / "analysis" / "summary.json").write_text(text)

    return write


def _edit(edit):
    return lambda run: _edit_summary(run, edit)


SHAPES = {
    "empty-object": (_replace("{}"), ["no key 'data' at the top level"]),
    "list": (_replace("[]"), ["a list instead of an object at the top level"]),
    "number": (_replace("3"), ["an integer instead of an object"]),
    "null": (_replace("null"), ["null instead of an object"]),
    "not-utf8": (lambda run: (run / "analysis" / "summary.json").write_bytes(b"\xff\xfe{"), []),
    "deeply-nested": (_replace("[" * 100_000 + "]" * 100_000), []),
    "views-string": (_edit(lambda s: s.update(views="inline")), ["`views`", "a list"]),
    "no-overview": (_edit(lambda s: s.pop("overview")), ["no key 'overview'"]),
    "overview-text": (
        _edit(lambda s: s["overview"].update(unforgettable="most")),
        ["`overview.unforgettable`", "a number or null"],
    ),
    "per-class-list": (
        _edit(lambda s: s.update(per_class=[1, 2])),
        ["a list instead of an object at `per_class`"],
    ),
    "figure-string": (_edit(lambda s: s["figures"].__setitem__(0, "x.png")), ["`figures[0]`"]),
    "figure-no-file": (_edit(lambda s: s["figures"][0].pop("file")), ["no key 'file'"]),
    "section-files-list": (
        _edit(lambda s: s["sections"][0].update(files=["a.png"])),
        ["`sections[0].files`"],
    ),
    "region-section-text": (
        _edit(lambda s: s["regions"]["top"][0].update(section="<b>")),
        ["`regions.top[0].section`", "an integer"],
    ),
    "metrics-list": (
        _edit(lambda s: s["metrics"].update(test=["x"])),
        ["`metrics.test`"],
    ),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_wrong_shaped_summary_is_one_line(run, tmp_path, case):
    damage, fragments = SHAPES[case]
    damage(run)
    out = tmp_path / "r.html"
    result = run_cli(["report", run, "--out", out])
    assert_user_error(result, "summary.json", f"segforget analyze {run}", *fragments)
    assert not out.exists()


def test_wrong_shaped_summary_library_error(run, tmp_path):
    (run / "analysis" / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match=r"Expected `.*summary\.json` to be the summary object"):
        write_report([run], out=tmp_path / "r.html")


def test_reanalysing_repairs_a_wrong_shaped_summary(run, tmp_path):
    """The fix the message names works."""
    (run / "analysis" / "summary.json").write_text("[]")
    assert run_cli(["analyze", run, "--quiet", "--no-figures"]).code == 0
    result = run_cli(["report", run, "--out", tmp_path / "r.html"])
    assert result.code == 0, result.stderr


def test_summary_text_is_escaped(run, tmp_path):
    """Names from someone else's summary.json cannot inject markup into the report."""

    def edit(summary):
        summary["views"] = ["<b>view</b>"]
        summary["class_names"][0] = "<i>class</i>"
        summary["metrics"]["test"]["class_iou"] = {"<i>class</i>": 0.5}

    _edit_summary(run, edit)
    text = write_report([run], out=tmp_path / "r.html").read_text()
    assert "<b>view</b>" not in text and "&lt;b&gt;view&lt;/b&gt;" in text
    assert "<i>class</i>" not in text and "test IoU: &lt;i&gt;class&lt;/i&gt;" in text
