"""`focuskit` command-line interface (typer + rich)."""

from focuskit.cli._app import app, main

__all__ = ["app", "main"]
