"""One self-contained HTML report of one or several runs (images embedded, works offline).

The page holds: the findings, a metrics table with the runs side by side, per-class forgetting,
the analysis figures with one-line captions that say what to look at, the top frequently
forgotten regions, and a section browser (plain HTML + JavaScript) over the sections with the
most forgetting. Runs without ``RUN/analysis/summary.json``, or whose dynamics stores are newer
than it, are analysed first.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segforget.io import atomic_write_text
from segforget.viz.numbers import format_percent, format_share

__all__ = ["write_report", "REPORT_NAME"]

#: File name of the report inside the first run directory (default output).
REPORT_NAME = "report.html"

#: Suffixes an output file may have (a report never replaces a data or config file).
_SUFFIXES = (".html", ".htm")

_MIME = {".png": "image/png", ".gif": "image/gif"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
 padding:1rem 1.5rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{border-bottom:2px solid #4e79a7;padding-bottom:.2rem;
 margin-top:2rem} h3{margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem} th,td{border:1px solid #ccc;
 padding:.25rem .5rem;text-align:right} th:first-child,td:first-child{text-align:left}
thead th{background:#eef2f7} tbody tr:nth-child(even){background:#fafafa}
figure{margin:1rem 0;border:1px solid #ddd;padding:.5rem;background:#fff}
figure img{max-width:100%;height:auto;display:block;margin:auto}
figcaption{font-size:.9rem;color:#444;margin-top:.3rem} figcaption b{color:#222}
.findings li{margin:.25rem 0} .muted{color:#777;font-size:.85rem}
#browser .controls{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;margin:.5rem 0}
#browser .panels{display:grid;grid-template-columns:1fr 1fr;gap:.6rem}
#browser .panels div{border:1px solid #ddd;padding:.3rem} #browser .panels img{width:100%;
 image-rendering:pixelated} #browser .panels span{font-size:.85rem;color:#444}
.legend span{display:inline-block;margin-right:.8rem;font-size:.85rem}
.legend i{display:inline-block;width:.9rem;height:.9rem;margin-right:.25rem;vertical-align:middle}
#sf-errors{display:none}
"""

# Installed first, so any later script error or console.error is recorded in the page.
_ERROR_CAPTURE = """
window.__sfErrors = [];
(function () {
  function record(text) {
    window.__sfErrors.push(String(text));
    var el = document.getElementById('sf-errors');
    if (el) { el.textContent = JSON.stringify(window.__sfErrors); }
  }
  window.addEventListener('error', function (e) {
    record((e.message || 'error') + (e.filename ? ' @ ' + e.filename : ''));
  }, true);
  var original = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
"""

_BROWSER_JS = """
(function () {
  var data = JSON.parse(document.getElementById('sf-browser-data').textContent);
  var runSel = document.getElementById('sf-run'), viewSel = document.getElementById('sf-view');
  var secSel = document.getElementById('sf-section');
  var kinds = ['seismic', 'labels', 'prediction', 'forgetting'];
  function option(sel, value, text) {
    var o = document.createElement('option'); o.value = value; o.textContent = text;
    sel.appendChild(o);
  }
  function entries() {
    var run = data.runs[runSel.value];
    return run.sections.filter(function (s) { return s.view === viewSel.value; });
  }
  function fillViews() {
    viewSel.innerHTML = '';
    var seen = {};
    data.runs[runSel.value].sections.forEach(function (s) {
      if (!seen[s.view]) { seen[s.view] = 1; option(viewSel, s.view, s.view); }
    });
    fillSections();
  }
  function fillSections() {
    secSel.innerHTML = '';
    entries().forEach(function (s, i) {
      option(secSel, i,
             'section ' + s.section + ' (' + s.forgetting_events + ' forgetting events)');
    });
    show();
  }
  function show() {
    var s = entries()[secSel.value];
    kinds.forEach(function (k) {
      var img = document.getElementById('sf-img-' + k), box = img.parentNode;
      if (s && s.images[k]) { img.src = s.images[k]; box.style.display = ''; }
      else { box.style.display = 'none'; }
    });
    document.getElementById('sf-caption').textContent = s ?
      viewSel.value + ' section ' + s.section + ': ' + s.forgetting_events +
      ' forgetting events in total' : 'no sections';
  }
  data.runs.forEach(function (r, i) { option(runSel, i, r.name); });
  runSel.addEventListener('change', fillViews);
  viewSel.addEventListener('change', fillSections);
  secSel.addEventListener('change', show);
  if (data.runs.length < 2) { runSel.parentNode.style.display = 'none'; }
  fillViews();
})();
"""


def _data_uri(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _fmt(value: Any, kind: str = "num") -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return format_percent(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _run_names(paths: list[Path]) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return names


def _metric_rows(summaries: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    def metric(s: dict[str, Any], split: str, key: str) -> Any:
        return ((s.get("metrics") or {}).get(split) or {}).get(key)

    rows: list[tuple[str, list[str]]] = []
    for split in ("test", "val"):
        for key, label in (
            ("pixel_accuracy", "pixel accuracy"),
            ("mean_class_accuracy", "mean class accuracy"),
            ("miou", "mIoU"),
            ("fwiou", "FWIoU"),
        ):
            values = [metric(s, split, key) for s in summaries]
            if any(v is not None for v in values):
                rows.append((f"{split}: {label}", [_fmt(v) for v in values]))
    names = summaries[0].get("class_names") or []
    for name in names:
        values = [(metric(s, "test", "class_iou") or {}).get(name) for s in summaries]
        if any(v is not None for v in values):
            rows.append((f"test IoU: {html.escape(name)}", [_fmt(v) for v in values]))
    ov = [s["overview"] for s in summaries]
    shares = (
        ("unforgettable pixels", "unforgettable"),
        ("never learned pixels", "never_learned"),
        ("forgotten at least once", "forgotten_at_least_once"),
        ("frequently forgotten (>= k events)", "frequently_forgotten"),
    )
    rows += [
        (label, [format_share(o.get(key), o.get("observed_pixels")) for o in ov])
        for label, key in shares
    ]
    rows += [
        ("k (frequent threshold)", [_fmt(s["k"]) for s in summaries]),
        ("mean forgetting events per pixel", [_fmt(o["mean_forgetting_events"]) for o in ov]),
        (
            "boundary enrichment within 2 px",
            [_fmt(s["boundary"]["enrichment_2px"]) for s in summaries],
        ),
        (
            "Spearman(forgetting, margin)",
            [_fmt(s["margin"].get("spearman_events_vs_aum")) for s in summaries],
        ),
        ("frequently forgotten regions", [_fmt(s["regions"]["count"]) for s in summaries]),
    ]
    aurocs = []
    for s in summaries:
        values = [
            v.get("auroc_switches_predict_error") for v in (s.get("test_dynamics") or {}).values()
        ]
        values = [v for v in values if v is not None]
        aurocs.append(_fmt(sum(values) / len(values)) if values else "–")
    if any(a != "–" for a in aurocs):
        rows.append(("AUROC: test switch events predict errors (mean over test sets)", aurocs))
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _per_class_table(summary: dict[str, Any]) -> str:
    rows = []
    for name, e in summary["per_class"].items():
        rows.append(
            [
                html.escape(name),
                _fmt(e["share_of_pixels"], "pct"),
                _fmt(e["mean_forgetting_events"]),
                _fmt(e["forgotten_at_least_once"], "pct"),
                _fmt(e["frequently_forgotten"], "pct"),
                _fmt(e.get("events_per_pixel_vs_largest_class")),
                _fmt(e["share_of_events"], "pct"),
            ]
        )
    return _table(
        [
            "class",
            "share of pixels",
            "events / pixel",
            "forgotten >= 1",
            "frequently forgotten",
            "events / pixel vs largest class",
            "share of all events",
        ],
        rows,
    )


def _regions_table(summary: dict[str, Any], limit: int = 15) -> str:
    rows = []
    for r in summary["regions"]["top"][:limit]:
        rows.append(
            [
                str(r["rank"]),
                f"{html.escape(r['view'])} {r['section']}",
                _fmt(r["pixels"]),
                _fmt(r["mean_forgetting_events"]),
                f"rows {r['row_min']}-{r['row_max']}, cols {r['col_min']}-{r['col_max']}",
                f"{html.escape(str(r['dominant_class']))} "
                f"({_fmt(r['dominant_class_share'], 'pct')})",
                _fmt(r.get("on_boundary_share"), "pct"),
            ]
        )
    if not rows:
        return "<p class='muted'>No frequently forgotten region.</p>"
    return _table(
        [
            "rank",
            "section",
            "pixels",
            "mean events",
            "bounding box",
            "dominant class",
            "on label boundary",
        ],
        rows,
    )


def _legend(class_names: Sequence[str]) -> str:
    from segforget.viz.figures import class_colors

    colors = class_colors(len(class_names))
    items = "".join(
        f"<span><i style='background:rgb({c[0]},{c[1]},{c[2]})'></i>{html.escape(n)}</span>"
        for n, c in zip(class_names, colors)
    )
    return f"<div class='legend'>{items}</div>"


def _needs_analysis(run: Path) -> bool:
    """No summary yet, or a dynamics store written after it (the run was trained again)."""
    summary = run / "analysis" / "summary.json"
    if not summary.is_file():
        return True
    stores = [s for mode in (run / "dynamics").glob("*") for s in mode.glob("*")]
    return any(s.stat().st_mtime > summary.stat().st_mtime for s in stores)


class _Optional:
    """A summary key the report reads with ``.get``: it may be absent or null."""

    def __init__(self, shape: Any) -> None:
        self.shape = shape


_NUMBER = (int, float, type(None))

#: What the report reads from summary.json. A type (or tuple of types): the value's type;
#: ``[shape]``: a list of such items; ``{str: shape}``: an object whose every value has the
#: shape; ``{key: shape, ...}``: an object with these keys (others are ignored); ``object``:
#: anything (shown escaped).
_REGION_SHAPE = {
    "rank": int,
    "view": str,
    "section": int,
    "pixels": object,
    "mean_forgetting_events": object,
    "row_min": int,
    "row_max": int,
    "col_min": int,
    "col_max": int,
    "dominant_class": object,
    "dominant_class_share": _NUMBER,
    "on_boundary_share": _Optional(_NUMBER),
}
_SUMMARY_SHAPE: dict[Any, Any] = {
    "data": str,
    "mode": str,
    "views": [str],
    "class_names": _Optional([str]),
    "k": int,
    "findings": _Optional([str]),
    "metrics": _Optional(
        {
            "test": _Optional({"class_iou": _Optional({str: object})}),
            "val": _Optional(dict),
        }
    ),
    "overview": {
        "unforgettable": _NUMBER,
        "never_learned": _NUMBER,
        "forgotten_at_least_once": _NUMBER,
        "frequently_forgotten": _NUMBER,
        "mean_forgetting_events": object,
    },
    "per_class": {
        str: {
            "share_of_pixels": _NUMBER,
            "mean_forgetting_events": object,
            "forgotten_at_least_once": _NUMBER,
            "frequently_forgotten": _NUMBER,
            "share_of_events": _NUMBER,
        }
    },
    "boundary": {"enrichment_2px": object},
    "margin": dict,
    "regions": {"count": object, "top": [_REGION_SHAPE]},
    "test_dynamics": _Optional({str: {"auroc_switches_predict_error": _Optional((int, float))}}),
    "figures": _Optional([{"file": str, "title": str, "caption": str}]),
    "sections": _Optional(
        [{"view": str, "section": int, "forgetting_events": int, "files": {str: str}}]
    ),
}

_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer"}


def _json_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, float):
        return "a number"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _shape_name(shape: Any) -> str:
    if isinstance(shape, list):
        return "a list"
    if isinstance(shape, dict) or shape is dict:
        return "an object"
    if shape == _NUMBER:
        return "a number or null"
    if shape == (int, float):
        return "a number"
    return _JSON_NAMES.get(shape, str(shape))


def _shape_problem(value: Any, shape: Any, where: str = "") -> str | None:
    """How ``value`` departs from ``shape`` (see :data:`_SUMMARY_SHAPE`), or None.

    ``where`` is the JSON path of ``value`` (``figures[0].file``; empty: the top level).
    """
    if shape is object:
        return None
    at = f"`{where}`" if where else "the top level"
    kind = dict if isinstance(shape, dict) else list if isinstance(shape, list) else shape
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        return f"{_json_name(value)} instead of {_shape_name(shape)} at {at}"
    if isinstance(shape, list):
        items = [(f"{where}[{i}]", item, shape[0]) for i, item in enumerate(value)]
    elif isinstance(shape, dict) and str in shape:
        items = [(f"{where}.{key}", item, shape[str]) for key, item in value.items()]
    elif isinstance(shape, dict):
        items = []
        for key, sub in shape.items():
            if isinstance(sub, _Optional):
                if value.get(key) is None:
                    continue
                sub = sub.shape
            elif key not in value:
                return f"no key {key!r} at {at}"
            items.append((f"{where}.{key}" if where else key, value[key], sub))
    else:
        items = []
    for inner, item, sub in items:
        problem = _shape_problem(item, sub, inner)
        if problem:
            return problem
    return None


def _load_summary(run: Path) -> dict[str, Any]:
    """``RUN/analysis/summary.json``, checked to hold what the report reads.

    Raises:
        ValueError: if the file is not JSON or not shaped like the summary of ``analyze``.
    """
    path = run / "analysis" / "summary.json"
    fix = f"run `segforget analyze {run}` again"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(
            f"Expected `{path}` to be the JSON that `segforget analyze` writes, got {error}; {fix}"
        ) from None
    problem = _shape_problem(summary, _SUMMARY_SHAPE)
    if problem:
        raise ValueError(
            f"Expected `{path}` to be the summary object that `segforget analyze` writes, got "
            f"{problem}; {fix}"
        )
    return summary


def _analysis_file(run: Path, name: str, entry: str) -> Path:
    """``RUN/analysis/NAME`` as named by the summary entry ``entry``, refused when it resolves
    (``..``, an absolute path, a symbolic link) outside the run's analysis directory.

    Raises:
        ValueError: if the file lies outside ``RUN/analysis``.
    """
    root = run.resolve() / "analysis"
    file = (root / name).resolve()
    if not file.is_relative_to(root):
        raise ValueError(
            f"Expected `{entry}` in `{run / 'analysis' / 'summary.json'}` to name a file inside "
            f"`{run / 'analysis'}`, got {name!r}, which points outside the run (to {str(file)!r}); "
            f"run `segforget analyze {run}` again"
        )
    return file


def write_report(
    run_dirs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Write one self-contained HTML report of one or several runs.

    Args:
        run_dirs: run directories (one or more); the first one's figures and browser come first.
        out: output file ending in .html or .htm (default ``RUN/report.html`` of the first run).
        force: replace an existing output file.
        progress: show progress bars while analysing runs that have no analysis yet.

    Returns:
        the path of the written report.

    Raises:
        ValueError: if ``run_dirs`` is empty, a directory is not a run directory, ``out`` is a
            directory or does not end in .html/.htm, a ``summary.json`` is not shaped like the
            one ``segforget analyze`` writes, or it names a file outside its run's analysis
            directory.
        FileNotFoundError: if a run directory does not exist.
        FileExistsError: if the output file exists and ``force`` is False.
    """
    from segforget.analysis.run import RunReader, analyze_run

    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise ValueError("Expected `run_dirs` to name at least one run directory, got none")
    for p in paths:  # validate every input before any work
        if _needs_analysis(p):
            RunReader(p)
        elif not (p / "config.yaml").is_file():
            raise ValueError(
                f"Expected `run_dir` to be a run directory written by `segforget train` (with "
                f"config.yaml and dynamics/), got {p}"
            )
    target = Path(out) if out is not None else paths[0] / REPORT_NAME
    if target.is_dir():
        raise ValueError(
            f"Expected `out` to be a file path, got the directory {target}; add a "
            "file name such as report.html"
        )
    if target.suffix.lower() not in _SUFFIXES:
        raise ValueError(
            f"Expected `out` to end in .html or .htm, got {str(target)!r}; name the report "
            "file such as report.html"
        )
    if os.path.lexists(target) and not force:
        raise FileExistsError(
            f"Expected the report's output file not to exist, got the existing file "
            f"{str(target)!r}; pass --force to replace it, or choose another --out"
        )
    summaries = []
    for p in paths:
        if _needs_analysis(p):
            analyze_run(p, progress=progress)
        summaries.append(_load_summary(p))
    names = _run_names(paths)
    parts = [
        f"<h1>segforget report: {html.escape(', '.join(names))}</h1>",
        "<p class='muted'>Per-pixel learning dynamics (forgetting events) of segmentation "
        "runs. Self-contained: every image is embedded; no network needed.</p>",
    ]
    parts.append("<h2>What the dynamics show</h2>")
    for name, s in zip(names, summaries):
        items = "".join(f"<li>{html.escape(t)}</li>" for t in s.get("findings") or [])
        parts.append(
            f"<h3>{html.escape(name)} <span class='muted'>({html.escape(s['data'])}, "
            f"{html.escape(s['mode'])} mode, views {html.escape(', '.join(s['views']))})"
            "</span></h3>"
            f"<ul class='findings'>{items}</ul>"
        )
    parts.append("<h2>Metrics and forgetting, side by side</h2>")
    parts.append(
        _table(["", *names], [[label, *values] for label, values in _metric_rows(summaries)])
    )
    parts.append(
        "<p class='muted'>k = frequent-forgetting threshold chosen from the run's "
        "distribution (see summary.json, overview.k_rule); to compare frequent-forgetting shares "
        "across runs, analyse them with one k (segforget analyze RUN --k K). Enrichment: share of "
        "forgetting events within 2 px of a label boundary divided by the share of "
        "pixels there (1 = no concentration).</p>"
    )
    for i, (name, p, s) in enumerate(zip(names, paths, summaries)):
        figures = []
        for j, fig in enumerate(s.get("figures") or []):
            file = _analysis_file(p, fig["file"], f"figures[{j}].file")
            if not file.is_file():
                continue
            figures.append(
                f"<figure><img alt='{html.escape(fig['title'])}' src='{_data_uri(file)}'>"
                f"<figcaption><b>{html.escape(fig['title'])}.</b> {html.escape(fig['caption'])}"
                "</figcaption></figure>"
            )
        body = (
            f"<h3>Per class</h3>{_per_class_table(s)}"
            f"<h3>Top frequently forgotten regions</h3>{_regions_table(s)}"
            f"<h3>Figures</h3>{''.join(figures)}"
        )
        parts.append(
            f"<h2>Run: {html.escape(name)}</h2>"
            f"<details{' open' if i == 0 else ''}><summary>per class, regions and "
            f"figures</summary>{body}</details>"
        )
    browser = {"runs": []}
    for name, p, s in zip(names, paths, summaries):
        sections = []
        for j, entry in enumerate(s.get("sections") or []):
            files = {
                kind: _analysis_file(p, rel, f"sections[{j}].files.{kind}")
                for kind, rel in entry["files"].items()
            }
            images = {kind: _data_uri(file) for kind, file in files.items() if file.is_file()}
            sections.append(
                {
                    "view": entry["view"],
                    "section": entry["section"],
                    "forgetting_events": entry["forgetting_events"],
                    "images": images,
                }
            )
        browser["runs"].append({"name": name, "sections": sections})
    panels = "".join(
        f"<div><span>{label}</span><img id='sf-img-{kind}' alt='{label}'></div>"
        for kind, label in (
            ("seismic", "seismic"),
            ("labels", "labels"),
            ("prediction", "final prediction"),
            ("forgetting", "forgetting events (brighter = more)"),
        )
    )
    parts.append(
        "<h2 id='browser-title'>Section browser</h2><div id='browser'>"
        "<p class='muted'>The sections with the most forgetting events, per view. Forgetting "
        "map colours share one scale across the sections of a view.</p><div class='controls'>"
        "<label>run <select id='sf-run'></select></label>"
        "<label>view <select id='sf-view'></select></label>"
        "<label>section <select id='sf-section'></select></label></div>"
        f"{_legend(summaries[0].get('class_names') or [])}"
        f"<p id='sf-caption'></p><div class='panels'>{panels}</div></div>"
    )
    blob = json.dumps(browser).replace("</", "<\\/")
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>segforget report: {html.escape(', '.join(names))}</title>"
        f"<script>{_ERROR_CAPTURE}</script><style>{_CSS}</style></head><body>"
        + "".join(parts)
        + "<pre id='sf-errors'>[]</pre>"
        + f"<script type='application/json' id='sf-browser-data'>{blob}</script>"
        + f"<script>{_BROWSER_JS}</script></body></html>\n"
    )
    atomic_write_text(target, page)
    return target
