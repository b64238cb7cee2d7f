"""CLI commands select, al-sim and label-issues: what to label next, which labels are wrong."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from segforget.cli._app import app


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"Expected `RUN` to be a run directory written by segforget train, got {str(run_dir)!r}"
        )


def _check_free(path: Path, force: bool) -> None:
    """Refuse, before any work, a file output that cannot be written or must not be replaced."""
    from segforget.io import check_output_file

    check_output_file(path, overwrite=force)


def _parse_list(text: str, name: str, cast: type = str) -> list:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"Expected `{name}` to be a comma-separated list, got {text!r}")
    try:
        return [cast(item) for item in items]
    except ValueError as exc:
        raise ValueError(
            f"Expected `{name}` to be a comma-separated list of {cast.__name__}, got {text!r}"
        ) from exc


def _default_name(strategy: str, pool: str, window: tuple[int, int] | None) -> str:
    """Default CSV name of a selection: windows of another size never replace sections."""
    suffix = "" if window is None else f"_{window[0]}x{window[1]}"
    return f"{strategy}_{pool}{suffix}.csv"


def _parse_patch(text: str) -> tuple[int, int]:
    """'H,W' or 'S' -> (H, W); sizes >= 1."""
    parts = [part.strip() for part in text.split(",")]
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        sizes = []
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise ValueError(
            f"Expected `--patch` to be 'H,W' or one size, integers >= 1 (e.g. 32,64), got {text!r}"
        )
    return sizes[0], sizes[1]


@app.command("select")
def select_command(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run directory of segforget train."),
    strategy: str = typer.Option(
        "switch", help="switch, gauss, switch-entropy, forgetting, entropy, margin or random."
    ),
    n: int = typer.Option(8, "--n", help="Number of sections (windows with --patch) to choose."),
    pool: str = typer.Option("test", help="'test' (all tracked test splits) or one split name."),
    view: str | None = typer.Option(None, help="Restrict the pool to one view."),
    seed: int = typer.Option(0, help="Seed of gauss and random."),
    mode: str = typer.Option("epoch", help="Recording mode of the statistics."),
    out: Path | None = typer.Option(
        None,
        help="CSV path (default RUN/select/<strategy>_<pool>.csv, with --patch "
        "<strategy>_<pool>_<H>x<W>.csv); a PNG goes beside it.",
    ),
    device: str = typer.Option("cpu", help="Torch device for entropy/margin."),
    spacing: int = typer.Option(
        0, help="Chosen sections at least this many section numbers apart (0: no rule)."
    ),
    patch: str | None = typer.Option(
        None,
        help="Rank windows of the sections instead of whole sections: 'H,W' (or one size "
        "for squares), e.g. 32,64.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace existing outputs."),
) -> None:
    """Rank unlabeled sections to label next from the tracked dynamics; write CSV + figure."""
    from segforget.analysis.active_learning import (
        STRATEGIES,
        pool_spaces,
        select_from_run,
        write_selection,
    )
    from segforget.train import load_run
    from segforget.train.loop import resolve_device

    if strategy not in STRATEGIES:
        raise ValueError(
            f"Expected `--strategy` to be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    if n < 1:
        raise ValueError(f"Expected `--n` to be a positive number of sections, got {n}")
    if spacing < 0:
        raise ValueError(f"Expected `--spacing` to be an integer >= 0, got {spacing}")
    if seed < 0:
        raise ValueError(f"Expected `--seed` to be an integer >= 0, got {seed}")
    device = str(resolve_device(device))
    window = None if patch is None else _parse_patch(patch)
    _check_run_dir(run_dir)
    csv_path = out or run_dir / "select" / _default_name(strategy, pool, window)
    if csv_path.suffix.lower() != ".csv":
        raise ValueError(f"Expected `--out` to end in .csv, got {str(csv_path)!r}")
    figure_path = csv_path.with_suffix(".png")
    _check_free(csv_path, force)
    _check_free(figure_path, force)
    run = load_run(run_dir)
    pool_spaces(run, pool, mode=mode, view=view)  # validates the pool before any work
    rows = select_from_run(
        run,
        strategy=strategy,
        n=n,
        pool=pool,
        seed=seed,
        mode=mode,
        view=view,
        device=device,
        spacing=spacing,
        patch=window,
    )
    write_selection(run, rows, csv_path=csv_path, figure_path=figure_path, mode=mode)
    for row in rows:
        where = ""
        if "row" in row:
            where = f"  rows {row['row']}+{row['height']} cols {row['col']}+{row['width']}"
        typer.echo(
            f"{row['rank']:>4}  {row['split']:>8} {row['view']:>10} {row['section']:>5}  "
            f"{row['score']:.4g}{where}"
        )
    if len(rows) < n:
        typer.echo(f"note: the pool holds only {len(rows)} to choose from, all of them are listed")
    typer.echo(f"wrote {csv_path} and {figure_path}")


#: Files al-sim writes to its --out folder: --force replaces only such a folder.
_AL_SIM_FILES = ("curves.json", "curves.png")


@app.command("al-sim")
def al_sim_command(
    preset: str | None = typer.Option(
        "small", help="Synthetic survey preset (ignored when --data is given)."
    ),
    data: str | None = typer.Option(None, help="Data spec instead of a preset, e.g. f3:DIR."),
    strategies: str = typer.Option(
        "switch,gauss,entropy,random", help="Comma-separated strategies."
    ),
    rounds: int = typer.Option(3, help="Acquisition rounds."),
    budget: int = typer.Option(2, help="Sections added per round."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    initial: int = typer.Option(2, help="Sections labeled at the start."),
    view: str | None = typer.Option(None, help="View to label (default: the first)."),
    model: str = typer.Option("tiny", help="Model name (see segforget.models)."),
    epochs: int = typer.Option(6, help="Epochs per round (pool observations)."),
    steps: int = typer.Option(10, help="Optimizer steps per epoch."),
    batch_size: int = typer.Option(4, help="Sections per step."),
    lr: float = typer.Option(3e-3, help="Adam learning rate."),
    track_warmup: int | None = typer.Option(
        None,
        help="Epochs before the pool is first observed (switch/gauss/forgetting); "
        "default: a third of --epochs.",
    ),
    pool_passes: int = typer.Option(
        1,
        help="Pool observations per tracked epoch, evenly spaced over its steps (1: after the "
        "epoch; at most --steps). More give switch counts a finer resolution.",
    ),
    spacing: int = typer.Option(
        0,
        help="Chosen sections at least this many section numbers apart from each other and "
        "from the labeled ones (0: no rule).",
    ),
    patch: str | None = typer.Option(
        None,
        help="Label windows of the sections instead of whole sections: 'H,W' (or one size); "
        "--initial and --budget then count windows.",
    ),
    random_draws: int = typer.Option(
        1,
        help="Independent random labeling chains per seed; random's curve is their mean "
        "(a steadier reference for the paired differences).",
    ),
    device: str = typer.Option("cpu", help="Torch device."),
    out: Path = typer.Option(Path("al-sim"), help="Output folder (curves.json, curves.png)."),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing output folder (one al-sim wrote)."
    ),
) -> None:
    """Simulate active learning (retrain per round); write learning curves JSON + plot."""
    from rich.progress import Progress

    from segforget.analysis.active_learning import (
        STRATEGIES,
        plot_learning_curves,
        simulate_active_learning,
    )
    from segforget.compare import format_p
    from segforget.io import atomic_directory, atomic_write_json, check_output_directory
    from segforget.train.loop import resolve_device

    names = _parse_list(strategies, "--strategies")
    for name in names:
        if name not in STRATEGIES:
            raise ValueError(
                f"Expected `--strategies` to hold names from {', '.join(STRATEGIES)}, got {name!r}"
            )
    seed_list = _parse_list(seeds, "--seeds", int)
    if any(seed < 0 for seed in seed_list):
        raise ValueError(f"Expected `--seeds` to hold integers >= 0, got {seeds!r}")
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"Expected `--lr` to be a finite number > 0, got {lr}")
    device = str(resolve_device(device))
    for name, value in (("--rounds", rounds), ("--budget", budget), ("--initial", initial)):
        if value < 1:
            raise ValueError(f"Expected `{name}` to be an integer >= 1, got {value}")
    if track_warmup is not None and not 0 <= track_warmup <= max(epochs - 2, 0):
        raise ValueError(
            f"Expected `--track-warmup` in [0, --epochs - 2] = [0, {max(epochs - 2, 0)}] "
            f"(switches need two pool observations), got {track_warmup}"
        )
    if spacing < 0:
        raise ValueError(f"Expected `--spacing` to be an integer >= 0, got {spacing}")
    if not 1 <= pool_passes <= steps:
        raise ValueError(
            f"Expected `--pool-passes` in [1, --steps] = [1, {steps}], got {pool_passes}"
        )
    if random_draws < 1:
        raise ValueError(f"Expected `--random-draws` to be an integer >= 1, got {random_draws}")
    window = None if patch is None else _parse_patch(patch)

    def check_out() -> None:  # before the work, and again before the long run's output lands
        check_output_directory(
            out, overwrite=force, command="al-sim", marker="curves.json", names=_AL_SIM_FILES
        )

    check_out()
    spec = data if data is not None else f"synthetic:{preset}"
    chains = len(names) + (random_draws - 1 if "random" in names else 0)
    total = chains * len(seed_list) * (rounds + 1)
    with Progress(transient=True) as progress:
        task = progress.add_task("al-sim rounds", total=total)

        def on_round(strategy, seed, round_index, labeled, miou):
            progress.advance(task)

        result = simulate_active_learning(
            spec,
            strategies=names,
            rounds=rounds,
            budget=budget,
            seeds=seed_list,
            initial=initial,
            view=view,
            model=model,
            epochs=epochs,
            steps_per_epoch=steps,
            batch_size=batch_size,
            lr=lr,
            track_warmup=track_warmup,
            pool_passes=pool_passes,
            spacing=spacing,
            patch=window,
            random_draws=random_draws,
            device=device,
            on_round=on_round,
        )
    # check_out, run again just before the output lands, decides whether --out may be replaced
    # (it may have changed during the long simulation); if not, the curves are kept beside it.
    with atomic_directory(out, overwrite=True, before_replace=check_out) as tmp:
        atomic_write_json(Path(tmp) / "curves.json", result)
        plot_learning_curves(result, Path(tmp) / "curves.png")
    labeled = result["curves"][names[0]]["labeled"]
    unit = "sections" if window is None else f"{window[0]}x{window[1]} windows"
    width = max(len("strategy"), *(len(name) for name in result["curves"]))
    header = "  ".join(f"{n:>13}" for n in labeled)
    typer.echo(f"{'strategy':<{width}}  {header}   (labeled {unit})")
    for name, curve in result["curves"].items():
        cells = "  ".join(
            f"{m:.3f} ± {s:.3f}" for m, s in zip(curve["miou_mean"], curve["miou_std"])
        )
        typer.echo(f"{name:<{width}}  {cells}")
    for name, references in result["paired"].items():
        for reference, paired in references.items():
            holm_p = paired.get("p_holm") or [None] * len(paired["p"])
            cells = "  ".join(
                f"{m:+.3f} {w}/{paired['seeds']:<2} {format_p(p)}"
                + ("" if h is None else f" (Holm {format_p(h)[2:]})")
                for m, w, p, h in zip(paired["mean"], paired["wins"], paired["p"], holm_p)
            )
            label = f"{name} - {reference}"
            typer.echo(
                f"{label:<{2 * width + 3}}  {cells}   (mean difference, seeds won, paired t-test "
                "p; Holm: adjusted over the acquisition rounds)"
            )
    if "random" in result["curves"] and random_draws > 1:
        typer.echo(f"random: the mean of {random_draws} independent draws per seed")
    typer.echo(f"wrote {out / 'curves.json'} and {out / 'curves.png'}")


#: Files label-issues writes to its output folder: --force replaces only such a folder.
_LABEL_ISSUES_FILES = ("pixels.csv", "sections.csv", "summary.json", "issues.png")


@app.command("label-issues")
def label_issues_command(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run directory of segforget train."),
    method: str = typer.Option(
        "combined", help="combined, never_learned, forgetting, confidence or aum."
    ),
    mode: str = typer.Option("epoch", help="Recording mode of the statistics."),
    view: str | None = typer.Option(None, help="One view (default: all tracked)."),
    fraction: float = typer.Option(0.02, help="Share of observed pixels flagged as suspected."),
    top_pixels: int = typer.Option(1000, help="Pixels listed in pixels.csv."),
    display: int = typer.Option(4, help="Sections shown in issues.png."),
    opening: int = typer.Option(
        1, help="Radius of the per-section opening of the scores (0: raw scores)."
    ),
    out: Path | None = typer.Option(None, help="Output folder (default RUN/label_issues)."),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing output folder (one label-issues wrote)."
    ),
) -> None:
    """Rank training pixels and sections by how likely their label is wrong; write CSVs + figure."""
    from segforget.analysis.label_issues import (
        ISSUE_METHODS,
        label_issues_from_run,
        write_label_issues,
    )
    from segforget.io import check_output_directory
    from segforget.train import load_run

    if method not in ISSUE_METHODS:
        raise ValueError(
            f"Expected `--method` to be one of {', '.join(ISSUE_METHODS)}, got {method!r}"
        )
    if not 0 <= fraction <= 1:
        raise ValueError(f"Expected `--fraction` to be in [0, 1], got {fraction}")
    if top_pixels < 1:
        raise ValueError(f"Expected `--top-pixels` to be >= 1, got {top_pixels}")
    if opening < 0:
        raise ValueError(f"Expected `--opening` to be >= 0, got {opening}")
    if display < 0:
        raise ValueError(f"Expected `--display` to be >= 0 sections, got {display}")
    _check_run_dir(run_dir)
    out_dir = out if out is not None else run_dir / "label_issues"

    def check_out() -> None:
        check_output_directory(
            out_dir,
            overwrite=force,
            command="label-issues",
            marker="summary.json",
            names=_LABEL_ISSUES_FILES,
        )

    check_out()
    run = load_run(run_dir)
    result = label_issues_from_run(
        run,
        method=method,
        mode=mode,
        view=view,
        fraction=fraction,
        top_pixels=top_pixels,
        opening=opening,
    )
    # check_out, run again just before the folder is replaced, decides whether it may be.
    write_label_issues(
        run, result, out_dir, num_display=display, overwrite=True, before_replace=check_out
    )
    for row in result["sections"][:10]:
        typer.echo(
            f"{row['rank']:>4}  {row['view']:>10} {row['section']:>5}  score {row['score']:.3f}  "
            f"flagged {row['flagged']}/{row['observed']}"
        )
    typer.echo(f"wrote {out_dir}")
