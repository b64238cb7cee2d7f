"""Command-line interface: one thin command per verb, each calling a library function.

Each module below registers its commands on the shared :data:`app`.
"""

from segforget.cli import analyze as _analyze  # noqa: F401
from segforget.cli import benchmark as _benchmark  # noqa: F401
from segforget.cli import data as _data  # noqa: F401
from segforget.cli import env as _env  # noqa: F401  (registers commands)
from segforget.cli import select as _select  # noqa: F401
from segforget.cli import train as _train  # noqa: F401
from segforget.cli._app import app, fail, main

__all__ = ["app", "main", "fail", "COMMAND_ORDER"]

#: How ``segforget --help`` lists the commands: in the order of the workflow (the ``data``
#: group follows them).
COMMAND_ORDER = (
    "demo",
    "train",
    "analyze",
    "report",
    "select",
    "label-issues",
    "al-sim",
    "benchmark",
    "synth",
    "import-segy",
    "env",
)


def _command_name(info) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


app.registered_commands.sort(key=lambda info: COMMAND_ORDER.index(_command_name(info)))
