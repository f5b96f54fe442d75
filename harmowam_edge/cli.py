"""`harmowam-edge`: the composition root. One sub-app per area; each lives in `harmowam_edge/commands/`.

This module and `harmowam_edge.commands` are the only runtime modules allowed to reach `export` and
`calibration`, and they do so lazily inside command bodies, so `harmowam-edge run` never imports torch or OpenCV.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from harmowam_edge.commands import bridge, calibrate, camera, distill, export, runtime, sim, train
from harmowam_edge.errors import describe_user_error

app = typer.Typer(
    name="harmowam-edge",
    help="Run HarmoWAM world-action-model robot policies on the robot's own computer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runtime.register(app)
train.register(app)
distill.register(app)
app.add_typer(bridge.app, name="bridge", help="The serial link to the arm firmware: simulate, ping, monitor, enable.")
app.add_typer(export.app, name="export", help="Checkpoints -> verified ONNX -> FP16/INT8 -> TensorRT -> deploy bundle.")
app.add_typer(camera.app, name="camera", help="RealSense cameras: list them, record to a file.")
app.add_typer(calibrate.app, name="calibrate", help="Camera calibration: intrinsics, hand-eye, checks, boards.")
app.add_typer(sim.app, name="sim", help="The simulated rig (MuJoCo): scripted demonstrations, benchmarks.")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: a user mistake prints one clear line and exits 2, never a traceback."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="harmowam-edge")
    except Exception as e:
        message = describe_user_error(e)
        if message is None:
            raise
        print(f"harmowam-edge: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
