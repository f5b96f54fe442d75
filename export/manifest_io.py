"""Reading a written bundle back (torch-free, so `export engines` runs on a Jetson without the export extra)."""

from __future__ import annotations

import json
from pathlib import Path

from export.errors import BundleReadError
from harmowam_edge.bundle.schema import MANIFEST_NAME, BundleSchemaError, Manifest, sha256_file


def verify_bundle(path: str | Path) -> Manifest:
    """Read a bundle's manifest and check every file's sha256 (what the runtime does on load)."""
    path = Path(path)
    mpath = path / MANIFEST_NAME
    if not path.is_dir():
        raise BundleReadError(f"{path}: no bundle directory here")
    if not mpath.is_file():
        raise BundleReadError(f"{path}: not a bundle ({MANIFEST_NAME} missing)")
    try:
        manifest = Manifest.from_dict(json.loads(mpath.read_text()), source=str(mpath))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleReadError(f"{mpath}: not valid JSON ({e})") from None
    except BundleSchemaError as e:
        raise BundleReadError(str(e)) from None
    for rel, digest in manifest.files.items():
        f = path / rel
        if not f.is_file():
            raise BundleReadError(f"{f}: listed in {MANIFEST_NAME} but missing")
        if sha256_file(f) != digest:
            raise BundleReadError(f"{f}: sha256 does not match {MANIFEST_NAME}; the bundle is corrupt, re-export it")
    return manifest
