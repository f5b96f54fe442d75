"""Top-level runtime commands: `run`, `replay`, `bench`, `doctor` (issue 4). Heavy imports inside the bodies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

import harmowam_edge

if TYPE_CHECKING:
    from firmware_bridge import ArmClient
    from harmowam_edge.bundle.loader import LoadedBundle
    from harmowam_edge.bundle.schema import Manifest
    from harmowam_edge.cameras.frames import CameraSource
    from harmowam_edge.sim.judge import TaskJudge
    from harmowam_edge.sim.rig import SimRig

BACKENDS = ("auto", "onnxruntime", "tensorrt")
BUSES = ("feetech", "dynamixel")
# The simulated rig renders and steps physics on the same CPU as the loop: its state stream may pause longer.
SIM_STATE_TIMEOUT_S = 0.5


def _echo(msg: str) -> None:
    typer.echo(msg, err=True)


def _check_choice(option: str, value: str | None, choices: tuple[str, ...]) -> None:
    from harmowam_edge.errors import ConfigError

    if value is not None and value not in choices:
        raise ConfigError(f"{option}: expected one of {', '.join(choices)}, got {value!r}")


def _load(bundle: Path, backend: str, precision: str | None, threads: int | None, flow_mode: str | None = None) -> Any:
    from harmowam_edge.bundle.loader import load_bundle

    _check_choice("--backend", backend, BACKENDS)
    _check_choice("--precision", precision, ("fp32", "fp16", "int8"))
    _check_choice("--flow-mode", flow_mode, ("unrolled", "step"))
    b = load_bundle(bundle, backend=backend, precision=precision, threads=threads, flow_mode=flow_mode)  # type: ignore[arg-type]
    for w in b.warnings:
        _echo(f"note: {w}")
    return b


def _close_arms(arms: list[str | ArmClient]) -> None:
    """Torque off and close the open arms (idempotent: the loop has usually closed them already)."""
    for a in arms:
        if not isinstance(a, str):
            a.close()


def _sim_task_judge(rig: SimRig, task: str) -> TaskJudge | None:
    """`run --sim`: a judge of the task from the sim's ground truth, so the summary says whether it was done."""
    from harmowam_edge.errors import ConfigError
    from harmowam_edge.sim.expert import choose_arm
    from harmowam_edge.sim.judge import TaskJudge
    from harmowam_edge.sim.tasks import parse_task

    try:
        t = parse_task(task)
    except ConfigError:  # a task of another robot's data: the loop runs, there is nothing to judge it by
        _echo(f"task {task}: the simulator has no success predicate for it; the run is not judged")
        return None
    if t.object not in rig.world.objects:
        _echo(f"task {task}: the scene has no {t.object}; the run is not judged")
        return None
    return TaskJudge(rig, t, choose_arm(rig, t.object))


def _task(bundle: LoadedBundle, task: str | None) -> str:
    names = bundle.manifest.tasks.names
    if task is None:
        _echo(f"task: {names[0]} (the bundle's first; --task picks another of: {', '.join(names)})")
        return names[0]
    bundle.task_embedding(task)  # a clear error for an unknown task
    return task


def _camera_source(spec: Any, value: str, loop: bool) -> CameraSource:
    """A `--camera` value: a recording (an existing file, .db3/.bag) or a RealSense serial number."""
    from harmowam_edge.cameras.realsense import RECORDING_SUFFIXES, RealSenseSource

    p = Path(value)
    if p.suffix in RECORDING_SUFFIXES or p.exists():
        return RealSenseSource.playback(spec, p, loop=loop)
    return RealSenseSource.live(spec, value)


def _cameras_for(manifest: Manifest, values: list[str], loop: bool) -> list[CameraSource]:
    from harmowam_edge.cameras.realsense import RealSenseSource
    from harmowam_edge.errors import ConfigError

    cams = manifest.cameras
    if not values:
        if len(cams) == 1:
            return [RealSenseSource.live(cams[0])]  # the one connected RealSense
        raise ConfigError(
            f"--camera: the bundle has {len(cams)} cameras ({', '.join(c.name for c in cams)}): give a serial number "
            f"or recording for each, in that order (or use --rig)"
        )
    if len(values) != len(cams):
        raise ConfigError(
            f"--camera: the bundle has {len(cams)} camera(s) ({', '.join(c.name for c in cams)}), got {len(values)}"
        )
    return [_camera_source(spec, v, loop) for spec, v in zip(cams, values, strict=True)]


def _check_joint_pos(text: str, q: Any, manifest: Manifest) -> None:
    """`--joint-pos`: one finite value per action-space dimension, named in the error."""
    import numpy as np

    from harmowam_edge.errors import ConfigError

    dims = [d.name for d in manifest.action_space.dims]
    if len(q) != len(dims):
        raise ConfigError(
            f"--joint-pos {text!r}: expected {len(dims)} comma-separated values ({', '.join(dims)}), got {len(q)}"
        )
    if not np.all(np.isfinite(q)):
        raise ConfigError(f"--joint-pos {text!r}: expected finite numbers")


def _print_summary(summary: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from harmowam_edge.telemetry.status import summary_rows

    stats = {**summary.stats, "duration_s": summary.duration_s}
    table = Table(title="harmowam-edge run", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for what, value in summary_rows(stats):
        table.add_row(what, value)
    Console(stderr=True).print(table)


def register(app: typer.Typer) -> None:
    """Add the top-level runtime commands to the root app."""

    @app.command()
    def version() -> None:
        """Print the harmowam-edge version."""
        typer.echo(harmowam_edge.__version__)

    @app.command()
    def run(
        bundle: Annotated[Path | None, typer.Option("--bundle", help="The deploy bundle (directory).")] = None,
        task: Annotated[str | None, typer.Option("--task", help="Task name (default: the bundle's first).")] = None,
        rig: Annotated[
            Path | None, typer.Option("--rig", help="Rig config (YAML): arms, ports, cameras, limits, rates.")
        ] = None,
        camera: Annotated[
            list[str] | None,
            typer.Option("--camera", help="RealSense serial or recording (.db3/.bag), one per bundle camera."),
        ] = None,
        port: Annotated[
            list[str] | None, typer.Option("--port", help="Serial port of each arm, in the bundle's arm order.")
        ] = None,
        duration: Annotated[float | None, typer.Option("--duration", help="Stop after this many seconds.")] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Everything but enabling the arm and sending setpoints.")
        ] = False,
        record: Annotated[Path | None, typer.Option("--record", help="Record the episode to this MCAP file.")] = None,
        stats: Annotated[Path | None, typer.Option("--stats", help="Write the run's statistics (JSON) here.")] = None,
        rate: Annotated[float | None, typer.Option("--rate", help="Control rate in Hz (default 200).")] = None,
        backend: Annotated[str, typer.Option("--backend", help="auto, onnxruntime or tensorrt.")] = "auto",
        precision: Annotated[str | None, typer.Option("--precision", help="fp32, fp16 or int8 graphs.")] = None,
        seed: Annotated[int, typer.Option("--seed", help="Flow-noise seed (and the sim's scene seed).")] = 0,
        threads: Annotated[int | None, typer.Option("--threads", help="ONNX Runtime threads per graph.")] = None,
        loop_recording: Annotated[
            bool, typer.Option("--loop-recording", help="Play recordings in a loop instead of stopping at the end.")
        ] = False,
        sim: Annotated[
            bool, typer.Option("--sim", help="Run on the simulated rig (MuJoCo + firmware simulator on PTYs).")
        ] = False,
        arms: Annotated[int | None, typer.Option("--arms", help="--sim without --bundle: 1 or 2 arms.")] = None,
        scene: Annotated[
            str | None,
            typer.Option("--scene", help="--sim: id, background, position or semantics (docs/sim.md)."),
        ] = None,
        video: Annotated[
            Path | None, typer.Option("--video", help="--sim: film the first camera with the policy's overlay.")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="No live status line.")] = False,
        untrained: Annotated[
            bool, typer.Option("--untrained", help="--sim without --bundle: the seeded UNTRAINED demo policy.")
        ] = False,
        bus: Annotated[
            str | None,
            typer.Option("--bus", help="--sim: each arm a simulated servo bus (feetech or dynamixel)."),
        ] = None,
        replan_every: Annotated[
            int | None,
            typer.Option("--replan-every", help="Actions between chunk requests (default: half a chunk)."),
        ] = None,
    ) -> None:
        """Run a policy on the robot: camera frames in, world model → gate → experts, joint setpoints out.

        Every stop (the duration, Ctrl-C, a lost link or camera, a firmware e-stop, an inference error) ends in
        hold → torque off → close, and says why. Exit status: 0 for a clean stop, 1 for a fault.
        """
        import contextlib
        import time

        from harmowam_edge.commands import option_checks as checks
        from harmowam_edge.control.loop import Rig, RunObserver, RunOptions, run_policy
        from harmowam_edge.control.rig import RigConfig
        from harmowam_edge.errors import ConfigError
        from harmowam_edge.telemetry.status import StatusLine

        # Every number first: nothing is loaded, opened or enabled on a bad one.
        checks.positive("--duration", duration)
        checks.rate_hz("--rate", rate)
        checks.int_range("--threads", threads, 1)
        checks.int_range("--replan-every", replan_every, 1)
        checks.int_range("--arms", arms, 1, 2)
        checks.seed("--seed", seed)
        t_launch = time.monotonic()
        if sim and (rig or camera or port):
            raise ConfigError("--sim brings its own arms and cameras: drop --rig, --port and --camera")
        if video is not None and not sim:
            raise ConfigError("--video films the simulated camera: it needs --sim")
        if arms is not None and not sim:
            raise ConfigError("--arms chooses the simulated rig's arm count: it needs --sim")
        if scene is not None and not sim:
            raise ConfigError("--scene chooses the simulated rig's scene: it needs --sim")
        _check_choice("--bus", bus, BUSES)
        if bus is not None and not sim:
            raise ConfigError("--bus: the simulated rig's servo bus needs --sim (a rig file names its own bus)")
        if bundle is None:
            if not sim:
                raise ConfigError("--bundle: missing (or --sim to run the demo bundle on the simulated rig)")
            from harmowam_edge.commands.sim import ensure_demo_bundle

            bundle, built = ensure_demo_bundle(1 if arms is None else arms, progress=_echo, untrained=untrained)
            if built:
                t_launch = time.monotonic()  # start-up is measured from here: the one-off export is not start-up
            from harmowam_edge.commands.sim import describe_demo_bundle

            _echo(describe_demo_bundle(bundle))
        elif untrained:
            raise ConfigError("--untrained chooses the demo policy of --sim without --bundle: drop one of the two")
        loaded = _load(bundle, backend, precision, threads)
        observers: list[RunObserver] = []
        judge: TaskJudge | None = None
        with contextlib.ExitStack() as stack:
            stack.callback(loaded.close)
            manifest = loaded.manifest
            name_task = _task(loaded, task)
            rig_cfg = None
            if sim:
                from harmowam_edge.sim.rig import open_sim_rig

                n_arms = len(manifest.action_space.arms)
                if arms is not None and arms != n_arms:
                    raise ConfigError(f"--arms {arms}: the bundle {bundle} drives {n_arms} arm(s)")

                _echo("starting the simulated rig (MuJoCo physics, firmware simulators on pseudo-terminals) ...")
                sim_rig = stack.enter_context(
                    open_sim_rig(
                        len(manifest.action_space.arms),
                        manifest.cameras,
                        seed,
                        action_space=manifest.action_space,
                        scene=scene or "id",
                        bus=bus,
                    )
                )
                _echo(sim_rig.describe())
                judge = _sim_task_judge(sim_rig, name_task)
                if judge is not None:
                    observers.append(judge)
                # Open servo-bus arms are closed by the loop; the callback covers a failure before it starts.
                sim_arms = sim_rig.arm_handles(SIM_STATE_TIMEOUT_S)
                stack.callback(_close_arms, sim_arms)
                the_rig = Rig(sim_arms, list(sim_rig.cameras), name="sim")
                if video is not None:
                    from harmowam_edge.sim.observer import SimVideoObserver

                    video_observer = SimVideoObserver(
                        video,
                        sim_rig.cameras[0],
                        untrained=manifest.provenance.untrained,
                        expected_duration_s=duration,
                    )
                    observers.append(video_observer)
            elif rig is not None:
                rig_cfg = RigConfig.load(rig)
                rig_cfg.check_against(manifest)
                if port:
                    raise ConfigError("--port: the rig config names the ports (drop --port or --rig)")
                by_name = {c.name: c for c in rig_cfg.cameras}
                if camera:
                    cams = _cameras_for(manifest, list(camera), loop_recording)
                else:
                    cams = []
                    for spec in manifest.cameras:
                        c = by_name.get(spec.name)
                        if c is None:
                            raise ConfigError(f"{rig}: cameras: no entry for the bundle's camera {spec.name!r}")
                        cams.append(_camera_source(spec, c.recording or c.serial or "", loop_recording))
                from harmowam_edge.control.arms import open_rig_arms

                # Last, so nothing else can fail with a bus open; the loop closes them (torque off), so does this.
                rig_arms = open_rig_arms(rig_cfg, rig_cfg.safety_config().state_timeout_s)
                stack.callback(_close_arms, rig_arms)
                the_rig = Rig(rig_arms, cams, config=rig_cfg, name=str(rig))
            else:
                ports = list(port or [])
                if not ports and not dry_run:
                    raise ConfigError("--port: give the arm's serial port (or --rig, or --dry-run to try without arm)")
                the_rig = Rig(ports, _cameras_for(manifest, list(camera or []), loop_recording), name="command line")
            if record is not None:
                from harmowam_edge.telemetry.episode import EpisodeRecorder

                observers.append(EpisodeRecorder(record))
            status = None if quiet else StatusLine()
            safety = None
            if sim:
                from harmowam_edge.control.safety import SafetyConfig

                # The simulated rig renders and steps physics on the same CPU as the loop: allow its state stream
                # longer gaps than a real arm's before calling it lost.
                safety = SafetyConfig(state_timeout_s=SIM_STATE_TIMEOUT_S)
            opts = RunOptions(
                task=name_task,
                duration_s=duration,
                dry_run=dry_run,
                control_rate_hz=rate,
                seed=seed,
                stats_path=stats,
                status=status,
                t_launch=t_launch,
                safety=safety,
                replan_every_steps=replan_every,
            )
            _echo(
                f"running {name_task!r} on {the_rig.name} with {loaded.backend}"
                + (" (DRY RUN: no setpoints)" if dry_run else "")
                + "; Ctrl-C stops (hold, then torque off)"
            )
            summary = run_policy(loaded, the_rig, opts, observers)
            if status is not None:
                status.close()
        _print_summary(summary)
        if judge is not None:
            _echo(judge.describe())
        if stats is not None:
            _echo(f"wrote {stats}")
        if record is not None:
            _echo(f"wrote {record}")
        if video is not None:
            written = video_observer.written  # an MP4, or a PNG contact sheet where no encoder is available
            if video_observer.error is not None:
                _echo(f"the video could not be finished: {video_observer.error}")
            _echo(f"wrote {written}" if written is not None else "no video: the camera delivered no frame")
        if not summary.clean:
            raise typer.Exit(1)

    @app.command()
    def replay(
        bundle: Annotated[Path, typer.Option("--bundle", help="The deploy bundle (directory).")],
        recording: Annotated[
            list[Path], typer.Option("--recording", help="A RealSense recording per bundle camera (.db3/.bag).")
        ],
        out: Annotated[Path, typer.Option("--out", help="Where to write the results (.npz or .json).")],
        task: Annotated[str | None, typer.Option("--task", help="Task name (default: the bundle's first).")] = None,
        seed: Annotated[int, typer.Option("--seed", help="Flow-noise seed.")] = 0,
        backend: Annotated[str, typer.Option("--backend", help="auto, onnxruntime or tensorrt.")] = "auto",
        precision: Annotated[str | None, typer.Option("--precision", help="fp32, fp16 or int8 graphs.")] = None,
        flow_mode: Annotated[str | None, typer.Option("--flow-mode", help="unrolled or step.")] = None,
        joint_pos: Annotated[
            str | None, typer.Option("--joint-pos", help="Start pose, comma-separated (default: zeros).")
        ] = None,
    ) -> None:
        """The policy over every frame of a recording, no arm: writes actions, gate weights and timings."""
        import numpy as np

        from harmowam_edge.commands import option_checks as checks
        from harmowam_edge.errors import ConfigError
        from harmowam_edge.policy.replay import replay_recordings

        checks.seed("--seed", seed)
        q = None
        if joint_pos is not None:
            try:
                q = np.array([float(v) for v in joint_pos.split(",")])
            except ValueError:
                raise ConfigError(f"--joint-pos {joint_pos!r}: expected comma-separated numbers") from None
        if q is not None:
            from harmowam_edge.bundle.loader import read_manifest

            _check_joint_pos(joint_pos or "", q, read_manifest(bundle))  # before the graphs load
        with _load(bundle, backend, precision, None, flow_mode) as loaded:
            name = _task(loaded, task)
            res = replay_recordings(loaded, list(recording), out, task=name, seed=seed, joint_pos=q)
        t = res.timings_ms["total"]
        modes = ", ".join(f"{k} {v}" for k, v in res.modes.items())
        typer.echo(
            f"{res.steps} policy steps ({modes}); step p50 {t['p50']:.2f} ms, p99 {t['p99']:.2f} ms; wrote {res.out}"
        )

    @app.command()
    def bench(
        json_out: Annotated[Path, typer.Option("--json", help="Write the figures here (JSON).")] = Path(
            "bench-results/runtime.json"
        ),
        bundle: Annotated[
            list[Path] | None,
            typer.Option(
                "--bundle",
                help="Bundle to measure (default: the seeded nano demo bundle, via export). Given twice or more: "
                "only their policy steps, timed interleaved, with ratios against the first.",
            ),
        ] = None,
        duration: Annotated[
            float, typer.Option("--duration", help="Seconds of control loop (the target figure is over 60 s).")
        ] = 60.0,
        iterations: Annotated[int, typer.Option("--iterations", help="Policy steps per path.")] = 200,
        threads: Annotated[
            int | None, typer.Option("--threads", help="ONNX Runtime threads per graph (default: cores - 1).")
        ] = None,
    ) -> None:
        """Policy step per path, control-loop jitter at 200 Hz under inference, frame → setpoint, start-up."""
        from harmowam_edge.commands import option_checks as checks
        from harmowam_edge.diagnostics.bench import run_bench

        checks.positive("--duration", duration)
        checks.int_range("--iterations", iterations, 10)
        checks.int_range("--threads", threads, 1)
        if bundle and len(bundle) > 1:
            from harmowam_edge.commands.export import wide_console
            from harmowam_edge.diagnostics.compare import compare_bundles

            report = compare_bundles(bundle, iterations=iterations, threads=threads, say=_echo)
            report.print_table("harmowam-edge bench (bundles interleaved)", console=wide_console())
            report.write(json_out)
            typer.echo(f"wrote {json_out}")
            return
        if bundle:
            path = bundle[0]
        else:
            from harmowam_edge.commands.sim import ensure_demo_bundle

            path, _ = ensure_demo_bundle(1, progress=_echo)
        report = run_bench(path, duration_s=duration, iterations=iterations, threads=threads, say=_echo)
        report.print_table("harmowam-edge bench (runtime)")
        report.write(json_out)
        typer.echo(f"wrote {json_out}")

    @app.command()
    def doctor(
        bundle: Annotated[Path | None, typer.Option("--bundle", help="Also check this bundle.")] = None,
    ) -> None:
        """Versions, providers, the bundle and its TensorRT engines, cameras, serial ports, power mode."""
        from rich.console import Console
        from rich.table import Table

        from harmowam_edge.diagnostics.doctor import run_doctor

        checks = run_doctor(bundle)
        table = Table(title="harmowam-edge doctor")
        for col in ("check", "", "details", "fix"):
            table.add_column(col)
        style = {"ok": "green", "info": "dim", "warn": "yellow", "fail": "red"}
        for c in checks:
            table.add_row(c.area, f"[{style[c.status]}]{c.status}[/]", c.detail, c.fix)
        Console().print(table)
        failed = [c for c in checks if c.status == "fail"]
        if failed:
            typer.echo(f"{len(failed)} problem(s) to fix", err=True)
            raise typer.Exit(1)
