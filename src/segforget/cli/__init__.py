"""Command-line interface: one thin command per verb, each calling a library function.

Each module below registers its commands on the shared :data:`app`.
"""

from segforget.cli import env as _env  # noqa: F401  (registers commands)
from segforget.cli._app import app, fail, main

__all__ = ["app", "main", "fail"]
