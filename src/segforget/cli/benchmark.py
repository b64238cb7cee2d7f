"""``segforget benchmark``: train every training method for several seeds and compare them."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer

from segforget.cli._app import app, invoked_command


@app.command("benchmark")
def benchmark_command(
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (DIR)."),
    preset: str = typer.Option("small", "--preset", help="Synthetic survey: small | medium | f3."),
    data: str | None = typer.Option(
        None, "--data", help="A data spec instead of --preset (f3:DIR, images:DIR, ...)."
    ),
    seeds: int = typer.Option(
        3, "--seeds", help="Number of seeds (first-seed .. first-seed + seeds - 1)."
    ),
    first_seed: int = typer.Option(
        0, "--first-seed", help="First seed (replicate on fresh seeds: --seeds 12 --first-seed 12)."
    ),
    methods: str = typer.Option(
        "baseline,rotate,oversample,style-input,style-feature,online",
        "--methods",
        help="Comma-separated methods (or labels defined in --options).",
    ),
    options: str | None = typer.Option(
        None,
        "--options",
        help='JSON of per-method options, e.g. \'{"style-input": {"p": 0.8}}\'; a label with '
        '"method" defines a variant.',
    ),
    epochs: int = typer.Option(12, "--epochs", help="Epochs per run (same for every method)."),
    model: str = typer.Option("light", "--model", help="Model name (see segforget train)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Sections per batch."),
    views: str | None = typer.Option(
        None, "--views", help="Comma-separated views to train on (default: all), e.g. inline."
    ),
    threshold: int = typer.Option(
        2, "--threshold", help="Forgetting events that make a pixel frequently forgotten."
    ),
    rare: str | None = typer.Option(
        None,
        "--rare",
        help="Comma-separated rare classes the tables single out (default: scruff,zechstein "
        "when the data has them, else the two smallest classes under 5% of the training "
        "pixels, or the smallest class).",
    ),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads."),
    resume: bool = typer.Option(False, "--resume", help="Reuse finished runs found in DIR."),
    force: bool = typer.Option(False, "--force", help="Replace DIR."),
) -> None:
    """Train each method for each seed with one budget; write DIR/benchmark.json, .md, .png."""
    from segforget.augment.benchmark import run_benchmark
    from segforget.viz.console import log_console

    parsed = None
    if options is not None:
        try:
            parsed = json.loads(options)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"Expected `--options` to be JSON, got {options!r} ({exc.msg})"
            ) from None
        if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
            raise ValueError(
                f"Expected `--options` to be a JSON object of objects per method, got {options!r}"
            )
    console = log_console(stderr=True)
    report = run_benchmark(
        out,
        preset=preset,
        data=data,
        seeds=seeds,
        first_seed=first_seed,
        methods=[m.strip() for m in methods.split(",") if m.strip()],
        options=parsed,
        epochs=epochs,
        model=model,
        batch_size=batch_size,
        views=None if views is None else [v.strip() for v in views.split(",") if v.strip()],
        threshold=threshold,
        rare=None if rare is None else [c.strip() for c in rare.split(",") if c.strip()],
        device=device,
        threads=threads,
        resume=resume,
        force=force,
        command=shlex.join(invoked_command()),  # re-runnable as written
        progress=lambda line: console.print(line),
    )
    typer.echo(
        f"wrote {out / 'benchmark.json'}, {out / 'benchmark.md'} and {out / 'benchmark.png'}"
    )
    if report.get("best"):
        typer.echo(f"best forgetting-aware method by mean test mIoU: {report['best']}")
