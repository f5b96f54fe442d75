"""`harmowam-edge train`: demonstrations -> a trained checkpoint (issue 12). torch is imported inside the body."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from harmowam_edge.commands.export import wide_console


def train(
    data: Annotated[
        list[Path], typer.Option("--data", help="A `sim demos` folder or LeRobot dataset; repeat for several.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint directory to write (config + safetensors).")],
    preset: Annotated[str, typer.Option("--preset", help="nano, small, base or reference.")] = "nano",
    steps: Annotated[
        int, typer.Option("--steps", help="Optimizer steps in all (with --resume: the new total).")
    ] = 1000,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda (under torchrun: one GPU per rank).")] = "cpu",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Read the data and print what training would see; do not train.")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Frames per step and process.")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate.")] = 5e-4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the weights, batches, noise and held-out split.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads (0: one per core).")] = 0,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Share of episodes held out.")] = 0.1,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Steps between validations (0: steps/10).")] = 0,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", help="Steps between checkpoints (0: steps/5).")
    ] = 0,
    horizon_dt: Annotated[
        float | None, typer.Option("--horizon-dt", help="Seconds between world-model horizon steps.")
    ] = None,
    flow_steps: Annotated[
        int | None,
        typer.Option(
            "--flow-steps", help="Euler steps of the predictive expert (default: the preset's; with --init, its)."
        ),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Model input WIDTHxHEIGHT instead of the preset's (e.g. 128x96).")
    ] = None,
    actions: Annotated[
        str, typer.Option("--actions", help="relative (offsets from the joint state) or absolute setpoints.")
    ] = "relative",
    state_noise: Annotated[
        float, typer.Option("--state-noise", help="Noise on the joint state the networks see (share of its std).")
    ] = 0.0,
    image_shift: Annotated[
        int,
        typer.Option("--image-shift", help="Random shift of the training frames in model pixels (0: none)."),
    ] = 0,
    camera_dropout: Annotated[
        float,
        typer.Option(
            "--camera-dropout",
            help="Share of training samples with one camera (chosen at random) blanked, so no view carries the "
            "policy alone (two or more cameras; 0: none).",
        ),
    ] = 0.0,
    demo_timing: Annotated[
        str,
        typer.Option(
            "--demo-timing",
            help="cruising (each demonstrated move re-timed to its peak speed: chunks depend on the state alone) "
            "or recorded (as the expert sent them).",
        ),
    ] = "cruising",
    gate_labels: Annotated[
        str,
        typer.Option("--gate-labels", help="phases (the expert's phase labels) or accuracy (the nearer expert)."),
    ] = "phases",
    reopen_weight: Annotated[
        float,
        typer.Option(
            "--reopen-weight",
            help="Draw frames whose label opens the fingers (a missed grasp's retry) this many times as often.",
        ),
    ] = 1.0,
    keypoints: Annotated[
        int | None,
        typer.Option(
            "--keypoints",
            help="Spatial-softmax keypoints per camera beside the patch tokens (sub-pixel target position); "
            "default: the preset's (0) or --init's, which can grow them from 0.",
        ),
    ] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="LeRobot feature mapping file.")] = None,
    init: Annotated[
        Path | None,
        typer.Option(
            "--init", help="Start from this checkpoint's weights, keeping its normalisation and task table (DAgger)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a non-empty --out.")] = False,
) -> None:
    """Train the world model, both experts and the gate on demonstrations; writes a checkpoint `export bundle` takes."""
    from export.errors import ConfigError
    from export.learning.trainer import TrainOptions, describe_data
    from export.learning.trainer import train as run_training

    if actions not in ("relative", "absolute"):
        raise ConfigError(f"--actions: expected relative or absolute, got {actions!r}")
    opts = TrainOptions(
        preset=preset,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        threads=threads,
        val_fraction=val_fraction,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        horizon_dt_s=horizon_dt,
        image=image,
        flow_steps=flow_steps,
        keypoints=keypoints,
        relative_actions=actions == "relative",
        state_noise=state_noise,
        image_shift=image_shift,
        camera_dropout=camera_dropout,
        gate_labels=gate_labels,
        demo_timing=demo_timing,
        reopen_weight=reopen_weight,
    )
    console = wide_console()
    if check:
        for line in describe_data(data, opts, mapping):
            console.print(line, markup=False)
        return
    result = run_training(
        data,
        out,
        opts,
        resume=resume,
        force=force,
        mapping=mapping,
        say=lambda m: console.print(m, markup=False),
        init=init,
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun rank 0 reports
    t = result.training
    final = t.get("val_final", {})
    console.print(
        f"wrote {result.checkpoint}: {t['steps']} steps in {t['wall_time_s']:.0f} s ({t['steps_per_s']} steps/s), "
        f"final train loss {t['final_losses'].get('total', float('nan')):.4f}"
        + (
            f", held-out action error {final['blend']:.4f} (untrained {t['val_initial']['blend']:.4f}, "
            f"hold-the-pose {final['hold']:.4f}), frame swap +{final.get('swap_gain', 0.0):.4f}"
            if final
            else ""
        ),
        markup=False,
    )
    console.print(f"next: harmowam-edge export bundle {result.checkpoint} --out bundles/{result.checkpoint.name}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
