"""Top-level runtime commands: `run`, `replay`, `bench`, `doctor` (issue 4). Heavy imports inside the bodies."""

from __future__ import annotations

import typer

import harmowam_edge


def register(app: typer.Typer) -> None:
    """Add the top-level runtime commands to the root app."""

    @app.command()
    def version() -> None:
        """Print the harmowam-edge version."""
        typer.echo(harmowam_edge.__version__)
