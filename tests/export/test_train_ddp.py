"""`harmowam-edge train` under torchrun: two gloo processes end with identical weights; one checkpoint is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch.distributed")

from tests.export.training_data import write_demos


def test_two_gloo_ranks_end_identical_and_write_once(tmp_path: Path) -> None:
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("this torch has no gloo backend")
    demos = write_demos(tmp_path / "demos", episodes=4)
    out = tmp_path / "ckpt"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "harmowam_edge.cli",
        "train",
        "--data",
        str(demos),
        "--out",
        str(out),
        "--preset",
        "nano",
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--checkpoint-every",
        "2",
        "--val-fraction",
        "0.25",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    t = json.loads((out / "config.json").read_text())["training"]
    assert t["world_size"] == 2
    digests = t["rank_weight_sha256"]
    assert len(digests) == 2
    assert digests[0] == digests[1]
    # Rank 0 alone writes and reports.
    assert proc.stdout.count("wrote ") == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "loss_curve.png",
        "training_log.jsonl",
        "training_state.pt",
        "weights.safetensors",
    ]
