"""``segforget env``: versions and machine facts for bug reports."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import typer

from segforget.cli._app import app

_PACKAGES = (
    "segforget",
    "torch",
    "segmentation-models-pytorch",
    "timm",
    "segyio",
    "numpy",
    "scipy",
    "zarr",
    "matplotlib",
    "typer",
    "rich",
    "lightning",
)


def environment_report() -> dict[str, str]:
    """Return versions of Python and the key packages, the compute device and thread counts."""
    import torch

    report: dict[str, str] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for name in _PACKAGES:
        try:
            report[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            report[name] = "not installed"
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        report["device"] = f"cuda ({', '.join(names)}), CUDA {torch.version.cuda}"
    else:
        report["device"] = "cpu (no CUDA device available)"
    report["torch threads"] = str(torch.get_num_threads())
    report["cpu count"] = str(os.cpu_count())
    report["tracker kernel (CPU)"] = _tracker_kernel()
    return report


def _tracker_kernel() -> str:
    """Which CPU update path new trackers take: the fused C kernel, or the torch path and
    why."""
    from segforget.dynamics import _native

    if _native.available():
        return "fused C kernel"
    return f"torch path ({_native.unavailable_reason()})"


@app.command("env")
def env_command() -> None:
    """Print versions of Python, torch, smp, segyio, numpy, the device and thread count."""
    for key, value in environment_report().items():
        typer.echo(f"{key:>30}: {value}")
