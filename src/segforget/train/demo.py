"""``segforget demo``: synthetic survey -> baseline with tracking -> analysis -> method -> report.

Budget: at most 5 minutes on 2 CPU cores for everything, so the baseline gets about a quarter
of it (the ``light`` model, :data:`DEMO_EPOCHS` epochs on the ``small`` preset) and the
forgetting-aware method the same again.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from segforget.train.config import RunConfig
from segforget.train.loop import check_replaceable, train

__all__ = [
    "DEMO_SPEC",
    "DEMO_EPOCHS",
    "DEMO_METHOD",
    "DEMO_TRAIN",
    "DEMO_OPTIONS",
    "demo_config",
    "demo_options",
    "train_method",
    "run_demo",
]

DEMO_SPEC = "synthetic:small"
DEMO_EPOCHS = 8
#: The forgetting-aware method the demo compares with the baseline (when segforget.augment has it).
DEMO_METHOD = "online"
#: Options the demo gives a method: ``online`` as the best entry of the small-preset benchmark
#: (``G20zT10`` in the README): ``focus`` (loss weighted 1 + gain on the pixels the live
#: tracker finds never learned, ``k`` 9), rotation up to 10 degrees, the salt grown by up to 20
#: rows where the model keeps getting it wrong, and the chalk thinned by up to 10 rows (so that
#: the scruff below it is seen under thin chalk as on the test traces); with
#: :data:`DEMO_TRAIN`'s weight average. Over 24 seeds it beat ``rotate`` on mIoU (+0.025),
#: scruff (+0.039), zechstein (+0.079) and the forgetting count (-48 %), Holm p <= 0.002 each.
DEMO_OPTIONS: dict[str, dict[str, Any]] = {
    "online": {
        "inner": "focus",
        "gain": 2.0,
        "dilate": 0,
        "k": 9,
        "rotate": 10.0,
        "warp": 20.0,
        "warp_mode": "grow",
        "warp_class": "zechstein",
        "warps": [
            {"pixels": 10.0, "mode": "thin", "class": "rijnland_chalk", "scope": "all", "p": 0.8}
        ],
    }
}
#: Training settings the demo gives a method's run on top of the baseline's configuration.
DEMO_TRAIN: dict[str, dict[str, Any]] = {"online": {"ema": 0.9}}
#: The flat method options that only make sense when the data has the class ``warp_class`` names.
_WARP_OPTIONS = ("warp", "warp_mode", "warp_class")


def _warps_for_classes(options: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    """``options`` without the warps whose class the data lacks: the flat ``warp*`` options
    (class ``warp_class``) and each entry of ``warps`` (class ``class``)."""
    options = dict(options)
    if options.get("warp_class") not in (None, *class_names):
        for key in _WARP_OPTIONS:
            options.pop(key, None)
    if "warps" in options:
        kept = [w for w in options["warps"] if w.get("class") in (None, *class_names)]
        if kept:
            options["warps"] = kept
        else:
            del options["warps"]
    return options


def demo_options(method: str, epochs: int, class_names: list[str] | None = None) -> dict[str, Any]:
    """The options the demo gives ``method`` for a run of ``epochs`` epochs.

    ``online`` first refreshes its regions after its warm-up (2 epochs); in a run that short
    (``--quick``: 2 epochs) the regions would never be used and the method would train exactly
    as the baseline, so the warm-up is cut to ``epochs - 1`` there. With ``class_names`` (the
    data's classes), each warp is left out when the data has no class of its name.
    """
    from segforget.augment.methods import Online

    options = copy.deepcopy(DEMO_OPTIONS.get(method) or {})
    if class_names is not None:
        options = _warps_for_classes(options, class_names)
    if method == "online" and options.get("warmup", Online.default_warmup) >= epochs > 1:
        options["warmup"] = epochs - 1
    return options


def demo_config(
    *,
    epochs: int = DEMO_EPOCHS,
    spec: str = DEMO_SPEC,
    model: str = "light",
    method: str = "baseline",
    options: dict | None = None,
) -> RunConfig:
    """The demo's configuration: light model, epoch + presentation tracking, test tracked too."""
    config = RunConfig()
    config.data.spec = spec
    config.model.name = model
    config.train.epochs = epochs
    config.train.batch_size = 8
    config.train.lr = 2e-3
    config.train.device = "cpu"
    config.track.mode = "both"
    # Test sections tracked from the first epoch: per pixel, switch counts over all epochs
    # predict test errors best (AUROC 0.81-0.87 on the demo; 0.72-0.77 with a warm-up of 2).
    config.track.test = True
    config.method.name = method
    config.method.options = dict(options or {})
    return config.validate()


def train_method(
    baseline: str | Path,
    out: str | Path,
    *,
    method: str = DEMO_METHOD,
    options: dict[str, Any] | None = None,
    train_settings: dict[str, Any] | None = None,
    force: bool = False,
    console: Any = None,
) -> dict[str, Any]:
    """Train ``method`` with the configuration of the run ``baseline``, regions read from it.

    Args:
        baseline: a finished run directory (its dynamics give the forgotten regions).
        out: run directory of the new run.
        method: a method name of :func:`segforget.augment.build_method`.
        options: extra method options (``regions`` defaults to ``baseline``).
        train_settings: training settings that differ from the baseline's (``{"ema": 0.9}``).

    Returns:
        The new run's metrics.
    """
    from segforget.augment.methods import REGION_METHOD_NAMES
    from segforget.train.loop import read_config

    config = read_config(baseline)
    config.method.name = method
    config.method.options = {"regions": str(baseline), **(options or {})}
    if method not in REGION_METHOD_NAMES:  # the others take no regions from a previous run
        config.method.options.pop("regions")
    for key, value in (train_settings or {}).items():
        setattr(config.train, key, value)
    return train(config.validate(), out, force=force, console=console)


def _check_method(method: str) -> None:
    try:
        from segforget.augment import METHOD_NAMES
    except ImportError:
        return  # reported (and the baseline trained) when the method would run
    if method not in METHOD_NAMES:
        raise ValueError(
            f"Expected `--method` to be one of {list(METHOD_NAMES)} or none, got {method!r}"
        )


def _method_available(method: str) -> bool:
    try:
        from segforget.augment import METHOD_NAMES, build_method  # noqa: F401
    except ImportError:
        return False
    return method in METHOD_NAMES


def run_demo(
    out: str | Path = "runs/demo",
    *,
    quick: bool = False,
    method: str | None = DEMO_METHOD,
    spec: str = DEMO_SPEC,
    model: str = "light",
    force: bool = False,
    console: Any = None,
) -> dict[str, Any]:
    """Run the whole demo into ``out``.

    Args:
        out: demo directory; runs go to ``out/baseline`` and ``out/<method>``.
        quick: 2 epochs instead of :data:`DEMO_EPOCHS` (a smoke test).
        method: forgetting-aware method to compare (None: baseline only).
        spec: data spec (default: the ``small`` synthetic survey, generated once and cached).
        model: model name.
        force: replace the runs of an earlier demo in ``out`` (only run directories, see
            :func:`~segforget.train.loop.check_replaceable`).

    Returns:
        ``{"runs": [...], "report": path or None, "wall_s": seconds, "metrics": {...}}``.

    Raises:
        ValueError: unknown method, ``out`` is a file, or ``force`` on a folder in the way
            that is not a run directory.
        FileExistsError: a run the demo writes exists already and ``force`` is not given.
    """
    from segforget.viz.console import log_console

    console = console or log_console()
    started = time.perf_counter()
    if method is not None:
        _check_method(method)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"Expected `--out` to be a directory (or not to exist), got the file {str(out)!r}; "
            "pass another --out"
        )
    epochs = 2 if quick else DEMO_EPOCHS
    baseline = out / "baseline"
    trained = method is not None and method != "baseline" and _method_available(method)
    # Checked before the baseline trains, so a refusal costs nothing and replaces nothing.
    for target in (baseline, out / method) if trained else (baseline,):
        if target.exists():
            if not force:
                raise FileExistsError(
                    f"Expected `--out` to hold no demo run yet, got {str(target)!r} which "
                    "exists; pass --force to replace it (or choose another --out)"
                )
            check_replaceable(target)
    console.print(f"[bold]segforget demo[/bold]: {spec}, model {model}, {epochs} epochs -> {out}")
    runs = [baseline]
    metrics = {
        "baseline": train(
            demo_config(epochs=epochs, spec=spec, model=model),
            baseline,
            force=force,
            console=console,
        )
    }
    _analyze(baseline, console)
    if method and method != "baseline":
        if trained:
            target = out / method
            source = "the live tracker" if method == "online" else "the baseline's forgetting"
            console.print(f"[bold]training {method}[/bold] (regions from {source})")
            metrics[method] = train_method(
                baseline,
                target,
                method=method,
                options=demo_options(method, epochs, _class_names(spec)),
                train_settings=DEMO_TRAIN.get(method),
                force=force,
                console=console,
            )
            runs.append(target)
            _analyze(target, console)
        else:
            console.print(f"method {method!r} is not available yet; baseline only")
    report = _report(runs, console)
    for name, values in metrics.items():
        test = values.get("test") or {}
        if test.get("miou") is not None:
            accuracy = test["pixel_accuracy"]
            miou = test["miou"]
            console.print(f"{name:>14}: test mIoU {miou:.3f}  pixel accuracy {accuracy:.3f}")
    wall = time.perf_counter() - started
    console.print(f"wall time: {wall:.0f} s")
    console.print(f"report: {report}" if report else f"runs: {', '.join(map(str, runs))}")
    return {"runs": runs, "report": report, "wall_s": wall, "metrics": metrics}


def _class_names(spec: str) -> list[str] | None:
    """The class names of the data ``spec`` (None when they cannot be read)."""
    from segforget.data import load_data

    try:
        return list(load_data(spec).class_names)
    except (ValueError, OSError):
        return None


def _analyze(run: Path, console: Any) -> None:
    try:
        from segforget.analysis import analyze_run
    except ImportError:
        console.print("analysis not available in this installation; skipped")
        return
    analyze_run(run, progress=False)


def _report(runs: list[Path], console: Any) -> Path | None:
    try:
        from segforget.viz.report import write_report
    except ImportError:
        console.print("report not available in this installation; skipped")
        return None
    return Path(write_report([str(r) for r in runs]))
