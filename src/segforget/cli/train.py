"""``segforget train`` and ``segforget demo``: thin commands over segforget.train."""

from __future__ import annotations

from pathlib import Path

import typer

from segforget.cli._app import app, invoked_command


@app.command("train")
def train_command(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to write (RUN)."),
    data: str | None = typer.Option(
        None, "--data", "-d", help="Data spec: f3:DIR | synthetic:PRESET[:SEED] | images:DIR."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML configuration file."),
    model: str | None = typer.Option(
        None, "--model", help="Model: light | tiny | ARCH-ENCODER (e.g. unet-resnet18)."
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Number of epochs."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Sections per batch."),
    lr: float | None = typer.Option(None, "--lr", help="Adam learning rate."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    track: str | None = typer.Option(
        None, "--track", help="Tracking mode: epoch | presentation | both | none."
    ),
    method: str | None = typer.Option(
        None, "--method", help="Training method (baseline, rotate, style-input, ...)."
    ),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue RUN from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Replace an existing RUN."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config key, e.g. --set train.grad_clip=0.5 (repeatable)."
    ),
) -> None:
    """Train a segmentation model and record the per-pixel learning dynamics in RUN."""
    from segforget.train import apply_overrides, load_config, train
    from segforget.train import resume as resume_run

    command = invoked_command()
    if resume and force:
        from segforget.train.loop import RESUME_OR_FORCE

        raise ValueError(RESUME_OR_FORCE)
    if resume:
        extra = {
            "--data": data,
            "--config": config,
            "--model": model,
            "--batch-size": batch_size,
            "--lr": lr,
            "--seed": seed,
            "--track": track,
            "--method": method,
            "--set": overrides or None,
        }
        given = [name for name, value in extra.items() if value is not None]
        if given:
            raise ValueError(
                f"Expected only --out, --epochs and --device with --resume (the run keeps its "
                f"saved configuration), got {', '.join(given)}"
            )
        metrics = resume_run(out, epochs=epochs, device=device, command=command)
        _echo_test_metrics(metrics)
        typer.echo(f"run resumed and finished: {out}")
        return
    settings = []
    for key, value in (
        ("data.spec", data),
        ("model.name", model),
        ("train.epochs", epochs),
        ("train.batch_size", batch_size),
        ("train.lr", lr),
        ("train.seed", seed),
        ("track.mode", track),
        ("method.name", method),
        ("train.device", device),
    ):
        if value is not None:
            settings.append((key, value))
    resolved = load_config(config)
    for key, value in settings:
        section, name = key.split(".")
        setattr(getattr(resolved, section), name, value)
    apply_overrides(resolved, overrides)
    metrics = train(resolved, out, force=force, command=command)
    _echo_test_metrics(metrics)
    typer.echo(f"run written to {out}")


def _echo_test_metrics(metrics: dict) -> None:
    """The finished run's headline test numbers, when it has test splits."""
    test = metrics.get("test") or {}
    if test.get("miou") is not None:
        typer.echo(f"test mIoU {test['miou']:.3f}, pixel accuracy {test['pixel_accuracy']:.3f}")


@app.command("demo")
def demo_command(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Demo output directory."),
    quick: bool = typer.Option(
        False, "--quick", help="A much shorter run (smoke test; dynamics are less meaningful)."
    ),
    method: str = typer.Option(
        "online",
        "--method",
        help="Forgetting-aware method to compare with the baseline ('none': baseline only).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace the runs of an earlier demo."),
) -> None:
    """Zero-configuration tour: synthetic survey, baseline with tracking, analysis, report."""
    from segforget.train.demo import run_demo

    run_demo(out, quick=quick, method=None if method == "none" else method, force=force)
