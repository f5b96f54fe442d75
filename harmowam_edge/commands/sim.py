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
    from harmowam_edge.commands import option_checks as checks
    from harmowam_edge.sim.scene import scene_xml

    checks.int_range("--arms", arms, 1, 2)
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


def parse_cameras(text: str, size: str, fps: int, depth: bool) -> tuple[object, ...]:
    """`front,wrist` (all at --size) or `front:128x96,wrist:96x96`: one CameraSpec per name."""
    from harmowam_edge.bundle.schema import CameraSpec
    from harmowam_edge.errors import ConfigError

    streams = ("color", "depth") if depth else ("color",)
    specs = []
    for item in (n.strip() for n in text.split(",")):
        if not item:
            continue
        name, _, own = item.partition(":")
        w, h = _parse_size(own or size)
        specs.append(CameraSpec(name.strip(), w, h, fps, streams))
    if not specs:
        raise ConfigError("--cameras: expected at least one camera name")
    return tuple(specs)


@app.command()
def demos(
    task: Annotated[
        str,
        typer.Option("--task", help="reach, pick or pick_and_place, optionally _<object> (e.g. pick_red_cube)."),
    ],
    episodes: Annotated[int, typer.Option("--episodes", help="How many episodes (seeds seed, seed+1, ...).")],
    out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the episodes.")],
    object_name: Annotated[
        str | None, typer.Option("--object", help="The object (default: from the task name or each episode's seed).")
    ] = None,
    arms: Annotated[int, typer.Option("--arms", help="1 or 2 arms.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first episode (training seeds: 0..99999).")] = 0,
    cameras: Annotated[
        str,
        typer.Option("--cameras", help="Camera names (front, side, top, wrist), each optionally :WxH: front:128x96."),
    ] = "front",
    size: Annotated[str, typer.Option("--size", help="Camera resolution WIDTHxHEIGHT (where a name has none).")] = (
        "640x480"
    ),
    fps: Annotated[int, typer.Option("--fps", help="Camera frame rate (a step is recorded per frame).")] = 30,
    depth: Annotated[bool, typer.Option("--depth/--no-depth", help="Record aligned z16 depth too.")] = True,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="Drive through the runtime's control loop with this bundle's cameras and arms."),
    ] = None,
    record_hz: Annotated[
        float | None,
        typer.Option("--record-hz", help="Recorded steps per second (default: every camera frame)."),
    ] = None,
    perturb: Annotated[
        str,
        typer.Option(
            "--perturb",
            help="none, start (seeded perturbed start poses), push (a mid-episode push, then the expert re-plans "
            "from the measured state) or start,push.",
        ),
    ] = "none",
    scene: Annotated[
        str,
        typer.Option("--scene", help="id (the training distribution), background, position or semantics."),
    ] = "id",
    output_format: Annotated[
        str,
        typer.Option(
            "--format", help="native (our format, with depth) or lerobot (a LeRobotDataset v3.0; docs/lerobot.md)."
        ),
    ] = "native",
) -> None:
    """Scripted demonstrations (IK reach / pick / pick-and-place) over the simulated rig's serial links."""
    from harmowam_edge.commands import option_checks as checks

    # Every number first: no folder is made and no simulator starts on a bad one.
    checks.int_range("--episodes", episodes, 1)
    checks.int_range("--fps", fps, 1)
    checks.seed("--seed", seed)
    checks.positive("--record-hz", record_hz, "steps per second")
    staging = _lerobot_staging(output_format, out, record_hz)
    lerobot_out = None
    if staging is not None:  # record natively beside --out, convert into --out at the end
        lerobot_out, out = out, staging
    from harmowam_edge.errors import ConfigError
    from harmowam_edge.sim.demos import collect_demos
    from harmowam_edge.sim.perturb import parse_perturb
    from harmowam_edge.sim.scene import check_scene
    from harmowam_edge.sim.seeds import check_training_seeds

    perturbation = parse_perturb(perturb)
    check_training_seeds(seed, episodes)
    check_scene(scene)
    if scene != "id":
        typer.echo(f"scene {scene!r}: an unseen environment (for checking the expert there; train on scene id)")
    if bundle is not None:
        # Through the runtime's own control loop, on the bundle's cameras, action space and chunking.
        from harmowam_edge.sim.loop_expert import collect_demos_via_runtime

        if perturbation.any or scene != "id":
            raise ConfigError("--perturb and --scene: not with --bundle (they are the direct driver's)")
        bundle_cameras_and_arms(bundle)  # a clear error for a path that is not a bundle, before anything starts
        meta = collect_demos_via_runtime(
            bundle, task, episodes, out, object_name=object_name, seed=seed, record_hz=record_hz, progress=typer.echo
        )
    else:
        specs = parse_cameras(cameras, size, fps, depth)
        meta = collect_demos(
            task,
            episodes,
            out,
            arms=arms,
            cameras=specs,  # type: ignore[arg-type]  # CameraSpecs (typed loosely to keep imports lazy)
            object_name=object_name,
            seed=seed,
            record_hz=record_hz,
            perturb=perturbation,
            scene=scene,
            progress=typer.echo,
        )
    done = meta["episodes"]
    ok = sum(1 for e in done if e["success"])
    typer.echo(f"scripted expert: {ok}/{len(done)} episodes succeeded ({meta['success_rate']:.0%}); wrote {out}")
    if lerobot_out is not None:
        import shutil

        from harmowam_edge.sim.lerobot import convert_demos

        convert_demos(out, lerobot_out)
        shutil.rmtree(out)
        typer.echo(f"wrote LeRobot v3.0 dataset {lerobot_out} (depth left out; the native staging folder removed)")


def _lerobot_staging(output_format: str, out: Path, record_hz: float | None = None) -> Path | None:
    """--format lerobot: the hidden folder beside --out that the episodes are recorded into first."""
    from harmowam_edge.errors import ConfigError
    from harmowam_edge.sim.demos import check_out_dir

    if output_format not in ("native", "lerobot"):
        raise ConfigError(f"--format: expected native or lerobot, got {output_format!r}")
    if output_format == "native":
        return None
    import importlib.util

    missing = [m for m in ("av", "pyarrow") if importlib.util.find_spec(m) is None]
    if missing:
        from harmowam_edge.errors import MissingDependencyError

        raise MissingDependencyError(missing[0], "lerobot", "--format lerobot")
    if record_hz is not None and not float(record_hz).is_integer():
        raise ConfigError(f"--record-hz: {record_hz} with --format lerobot: LeRobot datasets need an integer fps")
    check_out_dir(out)
    staging = out.parent / f".{out.name}.native"
    check_out_dir(staging)
    return staging


@app.command("to-lerobot")
def to_lerobot(
    src: Annotated[Path, typer.Argument(help="A folder written by `sim demos` (the native format).")],
    out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the LeRobot v3.0 dataset.")],
    codec: Annotated[str, typer.Option("--codec", help="av1 (LeRobot's default) or h264.")] = "av1",
    episodes_per_file: Annotated[
        int | None,
        typer.Option("--episodes-per-file", help="Start a new data/video file after this many episodes."),
    ] = None,
) -> None:
    """Convert native demonstrations to a LeRobotDataset v3.0 (depth is left out; docs/lerobot.md)."""
    from harmowam_edge.errors import ConfigError
    from harmowam_edge.sim.lerobot import convert_demos

    if episodes_per_file is not None and episodes_per_file < 1:
        raise ConfigError(f"--episodes-per-file: expected at least 1, got {episodes_per_file}")
    info = convert_demos(src, out, codec=codec, episodes_per_file=episodes_per_file, progress=typer.echo)
    typer.echo(
        f"wrote LeRobot {info['codebase_version']} dataset {out}: {info['total_episodes']} episodes, "
        f"{info['total_frames']} frames at {info['fps']} fps"
    )


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


# The shipped distilled student (config + safetensors + PROVENANCE.md): `make demo` runs it; `--untrained` (and
# two arms, which it does not drive) run the seeded untrained checkpoint instead.
DEMO_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "demo-student"


def _shipped_key(ckpt: Path) -> str:
    """A cache key over the shipped checkpoint's files (any change rebuilds, and the rebuild verifies them)."""
    import hashlib

    h = hashlib.sha256()
    for name in ("config.json", "weights.safetensors", "PROVENANCE.md"):
        h.update((ckpt / name).read_bytes())
    return h.hexdigest()[:12]


def describe_demo_bundle(bundle: Path) -> str:
    """The line `run --sim` prints about the demo policy it runs."""
    import json

    from harmowam_edge.bundle.schema import MANIFEST_NAME

    prov = json.loads((bundle / MANIFEST_NAME).read_text()).get("provenance", {})
    if prov.get("untrained", True):
        return (
            "the demo policy is UNTRAINED (a seeded random checkpoint through the real export path): the whole "
            "loop runs, the arm moves, but it does not do the task; give --bundle for a trained one"
        )
    return (
        f"the demo policy is the shipped distilled student {prov.get('checkpoint_name')} ({prov.get('preset')}, "
        f"checkpoint sha256 {str(prov.get('checkpoint_sha256'))[:12]}; {DEMO_CHECKPOINT / 'PROVENANCE.md'} says how "
        "it was made); --untrained runs the seeded untrained one"
    )


def ensure_demo_bundle(
    arms: int = 1, progress: Callable[[str], None] | None = None, untrained: bool = False
) -> tuple[Path, bool]:
    """The cached demo bundle for `arms`, built on first use: (path, built_now). The shipped distilled student
    (one arm) unless `untrained` or it is not there (then the seeded untrained checkpoint, and it says so)."""
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
    trained = not untrained and arms == 1 and (DEMO_CHECKPOINT / "config.json").is_file()
    if not untrained and not trained:
        say(f"no shipped student for {arms} arm(s) at {DEMO_CHECKPOINT}: the demo runs the UNTRAINED checkpoint")
    version = f"v{harmowam_edge.__version__}-{_export_fingerprint()}"
    prefix = "student-1arm-" if trained else f"{DEMO_PRESET}-{arms}arm-"
    key = prefix + (f"{_shipped_key(DEMO_CHECKPOINT)}-{version}" if trained else f"seed{DEMO_SEED}-{version}")
    target = root / key
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two first runs at once: one builds, the other waits and reuses
        if target.is_dir() and bundle_is_intact(target):
            return target, False
        shutil.rmtree(target, ignore_errors=True)
        import export

        if trained:
            say(f"building the demo bundle from the shipped student {DEMO_CHECKPOINT} through export: ")
            say(f"  provenance check -> ONNX -> parity check -> {target}")
        else:
            say(f"building the demo bundle (preset {DEMO_PRESET}, {arms} arm(s), seed {DEMO_SEED}) through export: ")
            say(f"  seeded UNTRAINED checkpoint -> ONNX -> parity check -> {target}")
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            if trained:
                from export.shipped import build_shipped_bundle

                build_shipped_bundle(DEMO_CHECKPOINT, work / "bundle")
            else:
                export.build_demo_bundle(work / "bundle", preset=DEMO_PRESET, arms=arms, seed=DEMO_SEED)
            (work / "bundle").rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for stale in root.glob(f"{prefix}*"):
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

    from harmowam_edge.commands import option_checks as checks
    from harmowam_edge.sim.rig import open_sim_rig

    checks.int_range("--arms", arms, 1, 2)
    checks.seed("--seed", seed)
    checks.positive("--duration", duration)
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


@app.command("eval")
def eval_(
    bundle: Annotated[
        list[Path], typer.Option("--bundle", help="A deploy bundle; repeat to compare several (interleaved).")
    ],
    task: Annotated[str, typer.Option("--task", help="pick_red_cube, ... or a kind (pick: the object per seed).")],
    episodes: Annotated[int, typer.Option("--episodes", help="Episodes per bundle (seeds seed, seed+1, ...).")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="First seed (evaluation seeds: 100000..999999).")] = 100_000,
    scene: Annotated[str, typer.Option("--scene", help="id, background, position or semantics.")] = "id",
    time_budget: Annotated[float, typer.Option("--time-budget", help="Seconds per episode before it fails.")] = 20.0,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.json and the failure videos.")] = Path(
        "eval-results"
    ),
    video: Annotated[bool, typer.Option("--video/--no-video", help="Film one failure per bundle.")] = True,
    expert: Annotated[
        bool, typer.Option("--expert", help="Also run the scripted expert through the same harness (upper bound).")
    ] = False,
    backend: Annotated[str, typer.Option("--backend", help="auto, onnxruntime or tensorrt.")] = "auto",
    precision: Annotated[str | None, typer.Option("--precision", help="fp32, fp16 or int8 graphs.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="ONNX Runtime threads per graph.")] = None,
    gate: Annotated[
        list[str] | None,
        typer.Option(
            "--gate",
            help="auto (the bundle's gate decides), reactive, predictive or blend; repeat to run each bundle "
            "under several, interleaved (an ablation of the gate).",
        ),
    ] = None,
    replan_every: Annotated[
        list[int] | None,
        typer.Option(
            "--replan-every",
            help="Actions between chunk requests (default: half a chunk); repeat to compare several, interleaved.",
        ),
    ] = None,
) -> None:
    """Closed-loop success of bundles on the simulated rig: the real Policy through run_policy, per seed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harmowam_edge.commands import option_checks as checks
    from harmowam_edge.sim.evaluation import EpisodeOutcome, EvalConfig, eval_variants, run_evaluation

    checks.int_range("--episodes", episodes, 1)
    checks.positive("--time-budget", time_budget)
    checks.int_range("--threads", threads, 1)
    checks.seed("--seed", seed)
    for b in bundle:
        bundle_cameras_and_arms(b)  # a clear error for a path that is not a bundle, before anything starts
    cfg = EvalConfig(
        bundles=tuple(bundle),
        task=task,
        episodes=episodes,
        seed=seed,
        scene=scene,
        time_budget_s=time_budget,
        out=out,
        video=video,
        backend=backend,
        precision=precision,
        threads=threads,
        expert=expert,
        gate_modes=tuple(gate or ("auto",)),
        replan_every=tuple(replan_every or (None,)),
    )
    cfg.validate()
    console = Console(stderr=True)
    tally: dict[str, list[int]] = {}
    columns = (
        TextColumn("[bold]sim eval[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        total = episodes * (len(eval_variants(cfg.bundles, cfg.gate_modes, cfg.replan_every)) + int(expert))
        job = bar.add_task("starting the simulated rig ...", total=total)

        def on_episode(done: int, n: int, o: EpisodeOutcome) -> None:
            k = tally.setdefault(o.bundle, [0, 0])
            k[0] += int(o.success)
            k[1] += 1
            rates = "  ".join(f"{name} {s}/{m}" for name, (s, m) in tally.items())
            bar.update(job, completed=done, description=f"seed {o.seed}: {rates}")

        report = run_evaluation(cfg, on_episode)
    _print_eval_table(report)
    typer.echo(f"wrote {out / 'report.json'}")


@app.command()
def table(
    reports: Annotated[
        list[Path], typer.Argument(help="`sim eval` report.json files (seed ranges of one bundle merge).")
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the table as a bench JSON document here.")
    ] = None,
    grasps: Annotated[
        bool, typer.Option("--grasps", help="Also: how often a closing lifted, by how far off the object it closed.")
    ] = False,
) -> None:
    """Success per task x scene x bundle with Wilson intervals; each bundle paired seed by seed with the first."""
    from rich.table import Table

    from harmowam_edge.commands.export import wide_console
    from harmowam_edge.sim.eval_table import load_cells, paired_against_first
    from harmowam_edge.telemetry.benchreport import BenchReport

    cells = load_cells(reports)
    pairs = paired_against_first(cells)
    t = Table(title="sim eval: success per task and scene (Wilson 95 %)")
    for col in ("task", "scene", "bundle", "success", "rate [Wilson 95%]", "seeds"):
        t.add_column(col)
    report = BenchReport("policy-eval")
    for c in cells:
        s = c.summary()
        lo, hi = s["wilson95"]
        seeds = f"{s['seeds'][0]}..{s['seeds'][1]}"
        t.add_row(
            c.task,
            c.scene,
            c.bundle,
            f"{c.successes}/{c.episodes}",
            f"{s['success_rate']:.0%} [{lo:.0%}, {hi:.0%}]",
            seeds,
        )
        report.add(
            f"{c.task} {c.scene} {c.bundle}: success ({c.episodes} episodes, "
            f"Wilson 95 % [{100 * lo:.0f}, {100 * hi:.0f}])",
            100 * s["success_rate"],
            "%",
        )
    console = wide_console()
    console.print(t)
    if pairs:
        p = Table(title="paired on the same seeds, against the first bundle of each scene")
        for col in (
            "task",
            "scene",
            "bundle vs reference",
            "seeds",
            "both",
            "only reference",
            "only bundle",
            "neither",
            "difference",
            "sign test p",
        ):
            p.add_column(col)
        for r in pairs:
            p.add_row(
                r["task"],
                r["scene"],
                f"{r['bundle']} vs {r['reference']}",
                str(r["seeds"]),
                str(r["both"]),
                str(r["only_reference"]),
                str(r["only_other"]),
                str(r["neither"]),
                f"{r['difference_points']:+.0f} points",
                f"{r['sign_test_p']:.2g}",
            )
            report.add(
                f"{r['task']} {r['scene']} {r['bundle']} vs {r['reference']}: paired difference "
                f"({r['seeds']} seeds, sign test p {r['sign_test_p']:.2g})",
                r["difference_points"],
                "points",
            )
        console.print(p)
    if grasps:
        report.details["lift_by_offset"] = _print_lift_by_offset(reports)
    if json_out is not None:
        report.details["cells"] = [c.summary() for c in cells]
        report.details["paired"] = pairs
        report.write(json_out)
        typer.echo(f"wrote {json_out}")


def _print_lift_by_offset(reports: list[Path]) -> list[dict[str, object]]:
    from rich.console import Console
    from rich.table import Table

    from harmowam_edge.sim.eval_stats import wilson_interval
    from harmowam_edge.sim.eval_table import load_grasp_attempts
    from harmowam_edge.sim.grasps import lift_by_offset

    rows = lift_by_offset(load_grasp_attempts(reports))
    t = Table(
        title="grasp attempts, every bundle: lifted, by the TCP's horizontal offset from the object (Wilson 95 %)"
    )
    for col in ("offset", "attempts", "lifted", "rate [Wilson 95%]"):
        t.add_column(col)
    for r in rows:
        hi = "" if r["to_m"] == float("inf") else f"{1000 * r['to_m']:.0f}"
        span = f"{1000 * r['from_m']:.0f}-{hi} mm" if hi else f">= {1000 * r['from_m']:.0f} mm"
        if r["attempts"]:
            lo_w, hi_w = wilson_interval(r["lifted"], r["attempts"])
            rate = f"{100 * r['lifted_rate']:.0f} % [{100 * lo_w:.0f}, {100 * hi_w:.0f}]"
        else:
            rate = "-"
        t.add_row(span, str(r["attempts"]), str(r["lifted"]), rate)
        r["to_m"] = None if r["to_m"] == float("inf") else r["to_m"]  # JSON has no infinity
    Console().print(t)
    return rows


@app.command()
def dagger(
    bundle: Annotated[Path, typer.Option("--bundle", help="The learner: a deploy bundle to roll out.")],
    task: Annotated[str, typer.Option("--task", help="pick_red_cube, ... or a kind (pick: the object per seed).")],
    episodes: Annotated[int, typer.Option("--episodes", help="Rollouts (seeds seed, seed+1, ...).")],
    out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the labelled rollouts.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first rollout (training seeds: 0..99999).")] = 0,
    scene: Annotated[str, typer.Option("--scene", help="id, background, position or semantics.")] = "id",
    threads: Annotated[int, typer.Option("--threads", help="ONNX Runtime threads per graph.")] = 1,
    record_hz: Annotated[float, typer.Option("--record-hz", help="Recorded (and labelled) frames per second.")] = 15.0,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="Seconds per rollout before it ends.")] = 20.0,
) -> None:
    """DAgger data: the bundle's own rollouts, every frame labelled with the scripted expert's chunk from there."""
    from harmowam_edge.commands import option_checks as checks

    checks.int_range("--episodes", episodes, 1)
    checks.int_range("--threads", threads, 1)
    checks.seed("--seed", seed)
    checks.positive("--record-hz", record_hz, "steps per second")
    checks.positive("--max-seconds", max_seconds)
    from harmowam_edge.sim.dagger import DaggerConfig, collect_dagger

    cfg = DaggerConfig(bundle, task, episodes, seed, out, scene, threads, record_hz, max_seconds)
    cfg.validate()  # seeds (training only), scene, task, --out: before anything loads
    bundle_cameras_and_arms(bundle)  # a clear error for a path that is not a bundle, before anything starts
    collect_dagger(cfg, progress=typer.echo)


@app.command()
def relabel(
    src: Annotated[Path, typer.Argument(help="A folder `sim dagger` wrote.")],
    out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the relabelled copy.")],
) -> None:
    """Label recorded DAgger rollouts again with the expert's current rules (no rollout; the source is kept)."""
    from harmowam_edge.sim.relabel_rollouts import relabel_rollouts

    relabel_rollouts(src, out, progress=typer.echo)


def _print_eval_table(report: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sim eval: {report['task']} in scene {report['scene']}, seeds {report['seeds']}")
    for col in (
        "bundle",
        "success",
        "rate [Wilson 95%]",
        "time to success p50",
        "stale",
        "rejected",
        "faults",
        "failures shut (p50 miss)",
        "gate",
        "video",
    ):
        table.add_column(col)
    bundles = report["bundles"]
    assert isinstance(bundles, list)
    for b in bundles:
        lo, hi = b["wilson95"]
        tts = b["time_to_success"]["median_s"]
        shares = ", ".join(f"{m} {v:.0%}" for m, v in b["gate"]["share_of_ticks"].items()) or "-"
        g = b["grasps"]
        miss = g["first_miss_xy_m_p50"]
        table.add_row(
            b["label"],
            f"{b['successes']}/{b['episodes']}",
            f"{b['success_rate']:.0%} [{lo:.0%}, {hi:.0%}]",
            "-" if tts is None else f"{tts:.1f} s",
            str(b["stale_chunks"]),
            str(b["rejected_chunks"]),
            str(b["faulted"]),
            f"{g['failures_that_closed']}/{g['failures']}" + ("" if miss is None else f" ({100 * miss:.1f} cm)"),
            shares,
            b["failure_video"] or "-",
        )
    Console().print(table)
