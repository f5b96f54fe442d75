"""`harmowam-edge sim ...`: commands of the simulated rig (issue 5). Heavy imports stay inside the command bodies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def bench(
    json_out: Annotated[Path, typer.Option("--json", help="Write the figures here (JSON).")] = Path(
        "bench-results/sim.json"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="Fewer repeats (a smoke run, not figures to report).")] = False,
    rig: Annotated[bool, typer.Option("--rig/--no-rig", help="Also run the rig over its serial link.")] = True,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="Close the loop with this bundle (default: the cached demo bundle)."),
    ] = None,
    loop: Annotated[bool, typer.Option("--loop/--no-loop", help="Also measure the closed loop (run --sim).")] = True,
) -> None:
    """Render time per frame (640x480 and 160x120), physics speed, and the rig's link figures."""
    from harmowam_edge.sim.bench import run_bench

    if loop and bundle is None:
        import importlib.util

        if importlib.util.find_spec("torch") is not None:
            bundle, _ = ensure_demo_bundle(1, progress=typer.echo)
        else:
            typer.echo("no --bundle and no export extra (torch) to build the demo bundle: skipping the closed loop")
    report = run_bench(quick=quick, rig=rig, bundle=bundle if loop else None)
    report.print_table("harmowam-edge sim bench")
    report.write(json_out)
    typer.echo(f"wrote {json_out}")


@app.command()
def urdf(
    out: Annotated[Path, typer.Option("--out", help="Where to write the URDF.")],
    prefix: Annotated[str, typer.Option("--prefix", help='Name prefix, e.g. "left_" for a dual-arm rig.')] = "",
) -> None:
    """Write the reference arm's URDF (the simulated arm's kinematics, for hand-eye calibration tools)."""
    from harmowam_edge.sim.urdf import write_urdf

    write_urdf(out, prefix)
    typer.echo(f"wrote {out}")


@app.command()
def scene(
    out: Annotated[Path, typer.Option("--out", help="Where to write the MJCF.")],
    arms: Annotated[int, typer.Option("--arms", help="1 or 2 arms.")] = 1,
) -> None:
    """Write the simulated rig's MJCF scene (open it in MuJoCo's viewer to look around)."""
    from harmowam_edge.bundle.schema import CameraSpec
    from harmowam_edge.sim.scene import scene_xml

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(scene_xml(arms, [CameraSpec("front", 640, 480, 30, ("color", "depth"))]))
    typer.echo(f"wrote {out}")


def _parse_size(text: str) -> tuple[int, int]:
    from harmowam_edge.errors import ConfigError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 8 or h < 8 or w > 4096 or h > 4096:
        raise ConfigError(f"--size {text!r}: expected 8..4096 pixels each way")
    return w, h


def bundle_cameras_and_arms(bundle: Path) -> tuple[tuple[object, ...], int]:
    """The cameras and arm count a bundle expects (reads manifest.json only: no engines, no runtime)."""
    import json

    from harmowam_edge.bundle.schema import MANIFEST_NAME, Manifest
    from harmowam_edge.errors import BundleError

    path = bundle / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: not found (is {bundle} a deploy bundle?)") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON ({e})") from None
    manifest = Manifest.from_dict(raw, str(path))
    return manifest.cameras, len(manifest.action_space.arms)


@app.command()
def demos(
    task: Annotated[str, typer.Option("--task", help="reach, pick or pick_and_place, optionally _<object>.")],
    episodes: Annotated[int, typer.Option("--episodes", help="How many episodes (seeds seed, seed+1, ...).")],
    out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the episodes.")],
    object_name: Annotated[
        str | None, typer.Option("--object", help="The object (default: from the task name or the seed).")
    ] = None,
    arms: Annotated[int, typer.Option("--arms", help="1 or 2 arms.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first episode.")] = 0,
    cameras: Annotated[
        str, typer.Option("--cameras", help="Comma-separated camera names (front, side, top, wrist).")
    ] = "front",
    size: Annotated[str, typer.Option("--size", help="Camera resolution WIDTHxHEIGHT.")] = "640x480",
    fps: Annotated[int, typer.Option("--fps", help="Camera frame rate.")] = 30,
    depth: Annotated[bool, typer.Option("--depth/--no-depth", help="Record aligned z16 depth too.")] = True,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="Drive through the runtime's control loop with this bundle's cameras and arms."),
    ] = None,
    record_hz: Annotated[float, typer.Option("--record-hz", help="Recorded steps per second.")] = 10.0,
) -> None:
    """Scripted demonstrations (IK reach / pick / pick-and-place) over the simulated rig's serial links."""
    from harmowam_edge.bundle.schema import CameraSpec
    from harmowam_edge.errors import ConfigError
    from harmowam_edge.sim.demos import collect_demos

    if not record_hz > 0:
        raise ConfigError(f"--record-hz: expected a rate > 0, got {record_hz}")
    if bundle is not None:
        # Through the runtime's own control loop, on the bundle's cameras, action space and chunking.
        from harmowam_edge.sim.loop_expert import collect_demos_via_runtime

        bundle_cameras_and_arms(bundle)  # a clear error for a path that is not a bundle, before anything starts
        meta = collect_demos_via_runtime(
            bundle, task, episodes, out, object_name=object_name, seed=seed, record_hz=record_hz, progress=typer.echo
        )
    else:
        w, h = _parse_size(size)
        names = [n.strip() for n in cameras.split(",") if n.strip()]
        if not names:
            raise ConfigError("--cameras: expected at least one camera name")
        streams = ("color", "depth") if depth else ("color",)
        specs = tuple(CameraSpec(n, w, h, fps, streams) for n in names)
        meta = collect_demos(
            task,
            episodes,
            out,
            arms=arms,
            cameras=specs,
            object_name=object_name,
            seed=seed,
            record_hz=record_hz,
            progress=typer.echo,
        )
    done = meta["episodes"]
    ok = sum(1 for e in done if e["success"])
    typer.echo(f"scripted expert: {ok}/{len(done)} episodes succeeded ({meta['success_rate']:.0%}); wrote {out}")


# ----------------------------------------------------------------------------------------------------------------
# The demo bundle of `run --sim` without --bundle: built through the real export path from a seeded, UNTRAINED
# checkpoint, cached so the second run starts at once. Lives here (the composition root) because only the CLI may
# reach `export`, lazily.

DEMO_PRESET = "nano"
DEMO_SEED = 0


def cache_root() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harmowam-edge"


def _export_fingerprint() -> str:
    """A hash of the code that writes bundles (export and the schema): a changed exporter rebuilds the cache."""
    import hashlib

    import export
    from harmowam_edge.bundle import schema

    h = hashlib.sha256()
    roots = [Path(export.__file__).parent]
    files = [*sorted(p for r in roots for p in r.rglob("*.py")), Path(schema.__file__)]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def bundle_is_intact(path: Path) -> bool:
    """Every file the manifest lists is there with its sha256 (a cache folder half-written or tampered with)."""
    import json

    from harmowam_edge.bundle.schema import MANIFEST_NAME, Manifest, sha256_file

    try:
        manifest = Manifest.from_dict(json.loads((path / MANIFEST_NAME).read_text()), str(path / MANIFEST_NAME))
        return all(sha256_file(path / f) == h for f, h in manifest.files.items())
    except (OSError, ValueError):
        return False


def ensure_demo_bundle(arms: int = 1, progress: Callable[[str], None] | None = None) -> tuple[Path, bool]:
    """The cached demo bundle for `arms`, built on first use: (path, built_now)."""
    import fcntl
    import shutil
    import tempfile

    import harmowam_edge
    from harmowam_edge.errors import ConfigError, MissingDependencyError

    if arms not in (1, 2):
        raise ConfigError(f"--arms: expected 1 or 2, got {arms}")
    say = progress or (lambda _m: None)
    import importlib.util

    if importlib.util.find_spec("torch") is None:  # export needs torch; the runtime never does
        raise MissingDependencyError("torch", "export", "Building the demo bundle (run --sim without --bundle)")
    root = cache_root() / "demo-bundles"
    root.mkdir(parents=True, exist_ok=True)
    key = f"{DEMO_PRESET}-{arms}arm-seed{DEMO_SEED}-v{harmowam_edge.__version__}-{_export_fingerprint()}"
    target = root / key
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two first runs at once: one builds, the other waits and reuses
        if target.is_dir() and bundle_is_intact(target):
            return target, False
        shutil.rmtree(target, ignore_errors=True)
        from export import build_demo_bundle

        say(f"building the demo bundle (preset {DEMO_PRESET}, {arms} arm(s), seed {DEMO_SEED}) through export: ")
        say(f"  seeded UNTRAINED checkpoint -> ONNX -> parity check -> {target}")
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            build_demo_bundle(work / "bundle", preset=DEMO_PRESET, arms=arms, seed=DEMO_SEED)
            (work / "bundle").rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for stale in root.glob(f"{DEMO_PRESET}-{arms}arm-*"):
            if stale != target:
                shutil.rmtree(stale, ignore_errors=True)  # bundles of older exporters
        return target, True


@app.command()
def serve(
    arms: Annotated[int, typer.Option("--arms", help="1 or 2 arms.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Object placement seed.")] = 0,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
) -> None:
    """Run the simulated arm(s) and print their serial ports, for any tool that opens a port (bridge, calibrate)."""
    import time

    from harmowam_edge.sim.rig import open_sim_rig

    with open_sim_rig(arms, [], seed) as rig:
        for name, port, addr in zip(rig.arm_names, rig.arm_ports, rig.arm_addresses, strict=True):
            typer.echo(f"arm {name!r}: port {port} (address {addr})")
        typer.echo("simulated rig running (MuJoCo physics in real time); Ctrl-C stops it")
        t_end = None if duration is None else time.monotonic() + duration
        try:
            while t_end is None or time.monotonic() < t_end:
                time.sleep(0.2)
                if rig.world.error is not None:
                    raise RuntimeError(f"the physics thread stopped: {rig.world.error!r}")
        except KeyboardInterrupt:
            typer.echo("stopping")
