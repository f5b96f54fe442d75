"""`harmowam-edge bridge ...`: commands of firmware_bridge (issue 2). Heavy imports stay inside the command bodies."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
