"""`harmowam-edge distill`: a trained teacher -> a smaller student with fewer flow steps (issue 13). torch is
imported inside the body."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from harmowam_edge.commands.export import wide_console


def distill(
    teacher: Annotated[Path, typer.Option("--teacher", help="The trained teacher checkpoint (from `train`).")],
    data: Annotated[
        list[Path], typer.Option("--data", help="A `sim demos` folder or LeRobot dataset; repeat for several.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Student checkpoint directory to write.")],
    preset: Annotated[str, typer.Option("--preset", help="The student's size: nano, small, base or reference.")] = (
        "nano"
    ),
    flow_steps: Annotated[
        int, typer.Option("--flow-steps", help="K: the student's flow steps (1-2; at most the teacher's).")
    ] = 2,
    steps: Annotated[
        int, typer.Option("--steps", help="Optimizer steps in all (with --resume: the new total).")
    ] = 2000,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    dagger_rounds: Annotated[
        int,
        typer.Option(
            "--dagger-rounds", help="Rounds of the student's own rollouts in the simulator, labelled by the teacher."
        ),
    ] = 0,
    dagger_episodes: Annotated[int, typer.Option("--dagger-episodes", help="Rollouts per DAgger round.")] = 10,
    dagger_task: Annotated[
        str | None, typer.Option("--dagger-task", help="Task of the rollouts (default: the data's first).")
    ] = None,
    dagger_seed: Annotated[int, typer.Option("--dagger-seed", help="Seed of the first rollout.")] = 90_000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Frames per step.")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate.")] = 5e-4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the student's weights, batches and noise.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads (0: one per core).")] = 0,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Share of episodes held out.")] = 0.1,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Steps between validations (0: steps/10).")] = 0,
    image: Annotated[
        str | None, typer.Option("--image", help="Student input WIDTHxHEIGHT instead of the preset's (e.g. 128x96).")
    ] = None,
    from_teacher: Annotated[
        bool,
        typer.Option(
            "--from-teacher",
            help="Start the student from the teacher's weights (same preset and image; fewer flow steps).",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a non-empty --out.")] = False,
) -> None:
    """Distil a trained teacher into a student: latents, both experts (K-step flow) and the gate learn the teacher's."""
    from export.learning.distill import DistillOptions
    from export.learning.distill import distill as run_distill
    from export.learning.trainer import TrainOptions

    opts = DistillOptions(
        train=TrainOptions(
            preset=preset,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device,
            threads=threads,
            val_fraction=val_fraction,
            eval_every=eval_every,
            image=image,
        ),
        flow_steps=flow_steps,
        dagger_rounds=dagger_rounds,
        dagger_episodes=dagger_episodes,
        dagger_task=dagger_task,
        dagger_seed=dagger_seed,
        from_teacher=from_teacher,
    )
    console = wide_console()
    result = run_distill(
        teacher,
        data,
        out,
        opts,
        resume=resume,
        force=force,
        command=shlex.join(["harmowam-edge", *sys.argv[1:]]),
        say=lambda m: console.print(m, markup=False),
    )
    t = result.training
    f0, f1 = t["fidelity_initial"], t["fidelity_final"]
    console.print(
        f"wrote {result.checkpoint}: {t['steps']} steps in {t['wall_time_s']:.0f} s ({t['steps_per_s']} steps/s)"
        + (
            f"; held-out action error vs the teacher: blend {f1['blend']:.4f} (undistilled {f0['blend']:.4f}), "
            f"{flow_steps}-step flow {f1['predictive']:.4f} (the teacher's own flow cut to {flow_steps} steps: "
            f"{f1['teacher_cut_to_k']:.4f}), gate decisions agree {100 * f1['gate_decision_agreement']:.0f} %"
            if f1
            else ""
        ),
        markup=False,
    )
    console.print(f"next: harmowam-edge export bundle {result.checkpoint} --out bundles/{result.checkpoint.name}")


def register(app: typer.Typer) -> None:
    app.command("distill")(distill)
