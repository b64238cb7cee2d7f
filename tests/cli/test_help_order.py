"""``segforget --help`` lists the commands in the order of the workflow."""

from __future__ import annotations

import typer.main

from segforget.cli import COMMAND_ORDER, app


def test_help_lists_every_command_in_workflow_order():
    group = typer.main.get_command(app)
    # the order --help prints; a new command must be placed in COMMAND_ORDER
    assert group.list_commands(None) == [*COMMAND_ORDER, "data"]
