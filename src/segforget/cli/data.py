"""``segforget synth``, ``segforget import-segy`` and ``segforget data info``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from segforget.cli._app import app

data_app = typer.Typer(
    name="data",
    help="Inspect data sets (synthetic:PRESET[:SEED], f3:DIR, images:DIR).",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} inlines"),
        TimeElapsedColumn(),
        transient=True,
    )


@app.command("synth")
def synth_command(
    out: Path | None = typer.Option(None, "--out", help="Directory to write (F3 layout)."),
    preset: str = typer.Option("small", "--preset", help="small, medium or f3 (F3's shapes)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same bytes)."),
    snr: float | None = typer.Option(None, "--snr", help="Signal-to-noise ratio (harder: lower)."),
    contrast: float | None = typer.Option(
        None, "--contrast", help="Impedance contrast between units (harder: lower), default 1."
    ),
    peak_hz: float | None = typer.Option(
        None, "--peak-hz", help="Dominant frequency of the Ricker wavelet (f3 preset: 30)."
    ),
    faults: int | None = typer.Option(None, "--faults", help="Number of large normal faults."),
    preview: bool = typer.Option(False, "--preview", help="Also write OUT/preview.png."),
    preview_only: Path | None = typer.Option(
        None, "--preview-only", help="Write only this PNG (no volumes); --out not needed."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing --out directory (one synth wrote) or --preview-only PNG.",
    ),
) -> None:
    """Generate an F3-like synthetic survey (train, test1, test2) in the F3 benchmark layout."""
    from segforget.data.core import VolumeData
    from segforget.data.f3 import F3_FILES
    from segforget.data.preview import write_preview
    from segforget.data.synthetic import generate_survey, survey_config, write_survey
    from segforget.io import check_output_directory, check_output_file

    knobs = dict(snr=snr, contrast=contrast, peak_hz=peak_hz, faults=faults)
    survey_config(preset, **knobs)  # validate before any work
    if out is None and preview_only is None:
        raise ValueError("Expected `--out DIR` (or `--preview-only PNG`), got neither")
    if out is not None:
        # --force replaces only a folder synth wrote: the F3 layout, survey.json, preview.png.
        written = (*(name for pair in F3_FILES.values() for name in pair), "survey.json")
        check_output_directory(
            out,
            overwrite=force,
            command="synth",
            marker="survey.json",
            names=(*written, "preview.png"),
            marker_fields={"source": "synthetic"},
        )
    if preview_only is not None:
        if preview_only.suffix.lower() != ".png":
            raise ValueError(
                f"Expected `--preview-only` to name a .png file, got {str(preview_only)!r}"
            )
        check_output_file(preview_only, overwrite=force, option="--preview-only")
    with _progress() as bar:
        task = bar.add_task(f"synth {preset} seed {seed}", total=None)
        survey = generate_survey(
            preset,
            seed=seed,
            **knobs,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    data = VolumeData(
        survey.volumes,
        name=f"synthetic:{preset}:{seed}",
        class_names=tuple(survey.metadata()["class_names"]),
    )
    if out is not None:
        write_survey(out, survey, overwrite=force)
        typer.echo(
            f"wrote {out} ({', '.join(f'{k} {v[0].shape}' for k, v in survey.volumes.items())})"
        )
        if preview:
            typer.echo(f"wrote {write_preview(data, out / 'preview.png')}")
    if preview_only is not None:
        typer.echo(f"wrote {write_preview(data, preview_only)}")


@app.command("import-segy")
def import_segy_command(
    seismic: Path = typer.Argument(..., help="SEG-Y file of the seismic cube."),
    labels: Path = typer.Option(..., "--labels", help="Labels cube: .npy or SEG-Y, same shape."),
    out: Path = typer.Option(..., "--out", help="Directory to write (F3 layout)."),
    iline: int = typer.Option(189, "--iline", help="Trace header byte of the inline number."),
    xline: int = typer.Option(193, "--xline", help="Trace header byte of the crossline number."),
    test1_inlines: str | None = typer.Option(
        None, "--test1-inlines", help="A:B inline positions (0-based) cut as test1."
    ),
    test2_crosslines: str | None = typer.Option(
        None, "--test2-crosslines", help="A:B crossline positions (0-based) cut as test2."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing --out directory (one import-segy wrote)."
    ),
) -> None:
    """Convert a SEG-Y cube and its labels to the F3 layout (train, test1, test2)."""
    from segforget.data.segy import import_segy

    target = import_segy(
        seismic,
        labels=labels,
        out=out,
        iline=iline,
        xline=xline,
        test1_inlines=test1_inlines,
        test2_crosslines=test2_crosslines,
        overwrite=force,
    )
    meta = json.loads((target / "survey.json").read_text())
    typer.echo(
        f"wrote {target} ({', '.join(f'{k} {tuple(v)}' for k, v in meta['shapes'].items())})"
    )


@data_app.command("info")
def info_command(
    data: str = typer.Option(..., "--data", help="synthetic:PRESET[:SEED], f3:DIR or images:DIR."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print shapes, section counts, class fractions and value range of a data set."""
    from segforget.data import load_data
    from segforget.io import to_jsonable

    info = load_data(data).describe()
    if as_json:
        typer.echo(json.dumps(to_jsonable(info), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{info['name']}[/bold]: {info['num_classes']} classes, views {info['views']}, "
        f"test splits {info['test_splits']}, train mean {info['train_mean']:.4g} "
        f"std {info['train_std']:.4g}"
    )
    spaces = Table("split/view", "sections", "section (H, W)", "pixels", "train/val sections")
    for key, entry in info["spaces"].items():
        split_sizes = (
            f"{entry['train_sections']}/{entry['val_sections']}"
            if "train_sections" in entry
            else ""
        )
        spaces.add_row(
            key,
            str(entry["num_sections"]),
            str(tuple(entry["section_shape"])),
            f"{entry['num_pixels']:,}",
            split_sizes,
        )
    console.print(spaces)
    if "volumes" in info:
        names = list(info["volumes"])
        volumes = Table("volume", "shape", "min", "max")
        for name, entry in info["volumes"].items():
            volumes.add_row(
                name, str(tuple(entry["shape"])), f"{entry['min']:.4g}", f"{entry['max']:.4g}"
            )
        console.print(volumes)
        fractions = Table("class", *names, title="class fractions (labelled pixels)")
        for class_name in info["class_names"]:
            fractions.add_row(
                class_name,
                *(f"{100 * info['volumes'][n]['class_fractions'][class_name]:.1f}%" for n in names),
            )
        console.print(fractions)
