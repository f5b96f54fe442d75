"""Checkpoints with a PROVENANCE.md: the digest of the files they should be and the command that makes them.

`distill` writes one beside every student; the repository ships one such folder (`checkpoints/demo-student/`)
for `make demo`. `load_shipped_checkpoint` refuses a folder whose files are not the ones its provenance names
(a hand-edited config, weights from another run, a truncated download).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from export.checkpoint import CONFIG_FILE, WEIGHTS_FILE, Checkpoint, checkpoint_sha256, load_checkpoint
from export.errors import CheckpointError

PROVENANCE_FILE = "PROVENANCE.md"
_DIGEST = re.compile(r"^checkpoint sha256: `([0-9a-f]{64})`", re.MULTILINE)


def write_provenance(ckpt: Path, command: str, training: Mapping[str, Any] | None = None) -> Path:
    """PROVENANCE.md for the checkpoint in `ckpt` as it is now (its sha256), with the reproducing command."""
    d = dict((training or {}).get("distillation") or {})
    trainer = (training or {}).get("trainer", "?")
    lines = [
        f"# {ckpt.name}: provenance",
        "",
        f"checkpoint sha256: `{checkpoint_sha256(ckpt)}`",
        "",
        f"(sha256 over the sha256s of {CONFIG_FILE} and {WEIGHTS_FILE}: `export.checkpoint.checkpoint_sha256`;",
        "the loader refuses the folder when its files hash to anything else.)",
        "",
        f"Written {datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')} by `{trainer}`.",
    ]
    if d:
        lines.append(
            f"Teacher: `{d.get('teacher')}` ({d.get('teacher_preset')}, {d.get('teacher_flow_steps')} flow steps), "
            f"sha256 `{d.get('teacher_sha256')}`; student flow steps: {d.get('flow_steps')}."
        )
    lines += ["", "Reproduce:", "", "```bash", command, "```", ""]
    path = ckpt / PROVENANCE_FILE
    path.write_text("\n".join(lines))
    return path


def provenance_digest(ckpt: Path) -> str:
    path = ckpt / PROVENANCE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: missing (a shipped checkpoint names its sha256 and reproducing command)"
        ) from None
    m = _DIGEST.search(text)
    if m is None:
        raise CheckpointError(f"{path}: no line `checkpoint sha256: `<64 hex digits>`` naming the checkpoint")
    return m.group(1)


def load_shipped_checkpoint(ckpt: str | Path) -> Checkpoint:
    """Load a checkpoint only if its files are the ones its PROVENANCE.md names."""
    ckpt = Path(ckpt)
    want = provenance_digest(ckpt)
    ck = load_checkpoint(ckpt)
    if ck.sha256 != want:
        raise CheckpointError(
            f"{ckpt / PROVENANCE_FILE}: names checkpoint sha256 {want[:16]}…, but {CONFIG_FILE} + {WEIGHTS_FILE} "
            f"hash to {ck.sha256[:16]}…: these are not the files its provenance describes"
        )
    return ck


def build_shipped_bundle(ckpt: str | Path, out: str | Path, **kwargs: Any) -> Path:
    """Verify a shipped checkpoint, then build its bundle through the ordinary export path."""
    from export.bundle import build_bundle

    want = load_shipped_checkpoint(ckpt).sha256
    report = build_bundle(ckpt, out, **kwargs)
    if report.manifest.provenance.checkpoint_sha256 != want:  # the files changed while the bundle was built
        raise CheckpointError(f"{ckpt}: changed during the export; the bundle {report.bundle} is not the shipped one")
    return report.bundle
