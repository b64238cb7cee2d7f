"""``segforget analyze RUN`` and ``segforget report RUN [RUN ...]``: explain a run's dynamics."""

from __future__ import annotations

from pathlib import Path

import typer

from segforget.cli._app import app


def _summary_lines(summary: dict) -> list[str]:
    from segforget.viz.numbers import format_share

    ov, b = summary["overview"], summary["boundary"]
    total = ov["observed_pixels"]
    lines = [
        f"pixels observed: {total:,} ({summary['mode']} mode, views {', '.join(summary['views'])})",
        f"unforgettable {format_share(ov['unforgettable'], total)}, never learned "
        f"{format_share(ov['never_learned'], total)}, forgotten at least once "
        f"{format_share(ov['forgotten_at_least_once'], total)}, frequently forgotten "
        f"(>= {summary['k']} events) {format_share(ov['frequently_forgotten'], total)}",
    ]
    if b["enrichment_2px"] is not None:
        lines.append(f"boundary enrichment within 2 px: {b['enrichment_2px']:.2f}")
    per_class = ", ".join(
        f"{name} {entry['mean_forgetting_events']:.3f}"
        for name, entry in summary["per_class"].items()
        if entry["mean_forgetting_events"] is not None
    )
    lines.append(f"forgetting events per pixel by class: {per_class}")
    lines += summary.get("findings", [])
    return lines


@app.command("analyze")
def analyze_command(
    run: Path = typer.Argument(..., help="Run directory written by `segforget train`."),
    k: int | None = typer.Option(  # noqa: UP007 - typer needs Optional on Python 3.10
        None, "--k", help="Frequent-forgetting threshold (default: chosen from the distribution)."
    ),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Draw figures."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summary."),
) -> None:
    """Analyse a run's learning dynamics: writes RUN/analysis/summary.json, figures, regions."""
    from segforget.analysis import analyze_run

    summary = analyze_run(run, progress=not quiet, k=k, figures=figures)
    if not quiet:
        for line in _summary_lines(summary):
            typer.echo(line)
    typer.echo(f"wrote {Path(run) / 'analysis' / 'summary.json'}")


@app.command("report")
def report_command(
    runs: list[Path] = typer.Argument(
        ..., help="One or more run directories (compared side by side)."
    ),
    out: Path | None = typer.Option(  # noqa: UP007
        None,
        "--out",
        "-o",
        help="Output file ending in .html or .htm (default: RUN/report.html of the first run).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
) -> None:
    """Write one self-contained HTML report (images embedded, opens offline) of one or more runs."""
    from segforget.viz.report import write_report

    path = write_report(runs, out=out, force=force, progress=True)
    typer.echo(f"wrote {path}")
