"""`harmowam-edge sim ...`: commands of the simulated rig (issue 5). Heavy imports stay inside the command bodies."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
