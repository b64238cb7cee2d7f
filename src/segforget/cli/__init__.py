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

__all__ = ["app", "main", "fail"]
