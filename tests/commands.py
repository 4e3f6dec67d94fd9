"""One `mapcoder-lite` command as a Typer app of its own, to invoke with typer's CliRunner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer


def command_app(name: str, command: Callable[..., Any]) -> typer.Typer:
    app = typer.Typer()
    app.command(name)(command)
    app.command("noop")(lambda: None)  # two commands, so typer keeps the command name
    return app
