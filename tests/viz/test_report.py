"""The HTML report: self-contained, and working in a real headless Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analysis.fake_run import analyzed_fake_run
from helpers import assert_user_error, run_cli
from segforget.viz.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Appended to a copy of the report: after load, record errors, undecodable images and whether
# choosing another section changes the shown forgetting map, into a <pre> that --dump-dom prints.
PROBE = """<script>
window.addEventListener('load', function () {
  var out = {errors: window.__sfErrors.slice()};
  var imgs = Array.prototype.slice.call(document.images);
  out.images = imgs.length;
  out.broken = imgs.filter(function (i) {
    return i.parentNode.style.display !== 'none' && !(i.complete && i.naturalWidth > 0);
  }).map(function (i) { return i.alt; });
  var sel = document.getElementById('sf-section');
  var img = document.getElementById('sf-img-forgetting');
  out.sections = sel.options.length;
  var before = img.src;
  sel.value = '1'; sel.dispatchEvent(new Event('change'));
  out.changed = img.src !== before && img.src.indexOf('data:image/png;base64,') === 0;
  var view = document.getElementById('sf-view');
  out.views = view.options.length;
  var el = document.createElement('pre'); el.id = 'probe-result';
  el.textContent = JSON.stringify(out); document.body.appendChild(el);
});
</script>"""


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    return analyzed_fake_run(tmp_path_factory)


def test_report_is_self_contained(analyzed, tmp_path):
    run, summary = analyzed
    path = write_report([run, run], out=tmp_path / "r.html")
    text = path.read_text()
    assert not re.search(r"""(src|href)=['"](?!data:)""", text)  # nothing loaded from outside
    assert "http://" not in text and "https://" not in text
    for fig in summary["figures"]:
        assert fig["caption"] in html.unescape(text)
    assert f"{summary['boundary']['enrichment_2px']:.3f}" in text
    assert text.count("data:image/png;base64,") >= len(summary["figures"]) - 1
    assert "data:image/gif;base64," in text


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is missing: apt-get install -y chromium (make test installs it)",
)
def test_report_in_headless_chromium(analyzed, tmp_path):
    run, _ = analyzed
    report = write_report([run], out=tmp_path / "report.html")
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    done = _chromium(
        ["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()], tmp_path / "profile1"
    )
    match = re.search(r'<pre id="probe-result">([^<]*)</pre>', done.stdout)
    assert match, done.stderr[-2000:]
    result = json.loads(match.group(1).replace("&quot;", '"'))
    assert result["errors"] == []
    assert result["broken"] == []
    assert result["images"] >= 8
    assert result["sections"] == 4 and result["views"] == 2
    assert result["changed"] is True
    shot = tmp_path / "report.png"
    _chromium(
        ["--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}", report.as_uri()],
        tmp_path / "profile2",
    )
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_error_capture_sees_script_errors(analyzed, tmp_path):
    """The page's own error capture works (so an empty list above means no error)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: apt-get install -y chromium")
    run, _ = analyzed
    report = write_report([run], out=tmp_path / "report.html")
    bad = tmp_path / "bad.html"
    bad.write_text(
        report.read_text().replace(
            "</body>", "<script>console.error('boom');</script>" + PROBE + "</body>"
        )
    )
    done = _chromium(["--virtual-time-budget=5000", "--dump-dom", bad.as_uri()], tmp_path / "p")
    result = json.loads(
        re.search(r'<pre id="probe-result">([^<]*)</pre>', done.stdout)
        .group(1)
        .replace("&quot;", '"')
    )
    assert result["errors"] == ["boom"]


def test_stale_analysis_is_detected(analyzed, tmp_path):
    from segforget.viz.report import _needs_analysis

    run, _ = analyzed
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    summary = copy / "analysis" / "summary.json"
    store = copy / "dynamics" / "epoch" / "train_inline"
    for other in (copy / "dynamics" / "epoch").iterdir():
        os.utime(other, (1_000, 1_000))
    os.utime(summary, (2_000, 2_000))
    assert not _needs_analysis(copy)
    os.utime(store, (3_000, 3_000))  # trained again after the analysis
    assert _needs_analysis(copy)
    summary.unlink()
    assert _needs_analysis(copy)


def test_report_user_errors(analyzed, tmp_path):
    run, _ = analyzed
    with pytest.raises(ValueError, match="Expected `run_dirs` to name at least one"):
        write_report([])
    with pytest.raises(FileNotFoundError, match="Expected `run_dir` to be an existing run"):
        write_report([tmp_path / "missing"])
    with pytest.raises(ValueError, match="Expected `out` to be a file path"):
        write_report([run], out=tmp_path)
    damaged = tmp_path / "damaged"
    shutil.copytree(run, damaged)
    (damaged / "analysis" / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="segforget analyze"):
        write_report([damaged], out=tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_cli_report_and_errors(analyzed, tmp_path):
    run, _ = analyzed
    result = run_cli(["report", run, "--out", tmp_path / "cli.html"])
    assert result.code == 0, result.stderr
    assert (tmp_path / "cli.html").stat().st_size > 10_000
    assert_user_error(run_cli(["report", tmp_path / "nope"]), "existing run directory")
    assert_user_error(run_cli(["analyze", tmp_path / "nope"]), "existing run directory")
    (tmp_path / "plain").mkdir()
    assert_user_error(run_cli(["analyze", tmp_path / "plain"]), "run directory")
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    shutil.rmtree(broken / "dynamics" / "epoch" / "train_inline" / "forgetting_events")
    assert_user_error(run_cli(["analyze", broken, "--quiet"]), "damaged")


def test_cli_analyze(analyzed, tmp_path):
    run, summary = analyzed
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    result = run_cli(["analyze", copy, "--no-figures"])
    assert result.code == 0, result.stderr
    assert f"boundary enrichment within 2 px: {summary['boundary']['enrichment_2px']:.2f}" in (
        result.stdout
    )
    written = json.loads((copy / "analysis" / "summary.json").read_text())
    assert written["k"] == summary["k"]
    at_least_once, frequent = _event_counts(run, summary["k"])
    assert re.search(rf"forgotten at least once [0-9.]+% \({at_least_once:,}\)", result.stdout)
    k = summary["k"]
    assert re.search(rf"\(>= {k} events\) [0-9.]+% \({frequent:,}\)", result.stdout)


def _event_counts(run: Path, k: int) -> tuple[int, int]:
    """Pixels forgotten at least once and at least k times, counted in the stores directly."""
    from segforget.dynamics import ForgettingStats

    events = np.concatenate(
        [
            ForgettingStats.load(run / "dynamics" / "epoch" / f"train_{view}").forgetting_events
            for view in ("inline", "crossline")
        ]
    )
    return int((events >= 1).sum()), int((events >= k).sum())


def test_percent_never_shows_a_nonzero_share_as_zero():
    from segforget.viz.numbers import format_percent as _percent
    from segforget.viz.numbers import format_share as _share

    assert _percent(0.0) == "0.0%"
    assert _percent(0.9653) == "96.5%"
    assert _percent(0.001) == "0.1%"
    assert _percent(0.00042237) == "0.04%"
    assert _percent(0.0001) == "0.01%"
    assert _percent(0.00000999) == "< 0.01%"
    assert _percent(1.0) == "100.0%"
    assert _percent(0.999) == "99.9%"
    assert _percent(0.9996) == "99.96%"
    assert _percent(0.9999999) == "> 99.99%"
    assert _share(447 / 1058304, 1058304) == "0.04% (447)"
    assert _share(0.5, None) == "50.0%"
    assert _share(None, 10) == "–"


def test_report_gives_pixel_counts_that_match_the_stores(analyzed, tmp_path):
    run, summary = analyzed
    at_least_once, frequent = _event_counts(run, summary["k"])
    text = html.unescape(write_report([run], out=tmp_path / "r.html").read_text())
    for label, count in (
        ("forgotten at least once", at_least_once),
        ("frequently forgotten (>= k events)", frequent),
    ):
        row = re.search(re.escape(label) + r"</td><td[^>]*>([^<]*)</td>", text)
        assert row, f"no report row {label!r}"
        assert row.group(1).endswith(f"({count:,})"), (label, row.group(1), count)
        assert count > 0
