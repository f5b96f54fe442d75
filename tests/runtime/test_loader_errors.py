"""Honest loader errors (issue 11, items 7 and 9): a bundle path that is a file, a precision the bundle lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmowam_edge.bundle.loader import bundle_precisions, load_bundle, read_manifest, select_graphs
from harmowam_edge.cli import main
from harmowam_edge.errors import BundleError


def test_a_bundle_path_that_is_a_file_says_it_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "bundle.zip"
    f.write_bytes(b"PK")
    with pytest.raises(BundleError, match=r"bundle\.zip: is a file; a deploy bundle is a directory"):
        read_manifest(f)


def test_a_precision_the_bundle_lacks_is_refused_naming_what_it_has(nano_bundle: Path) -> None:
    m = read_manifest(nano_bundle)
    assert bundle_precisions(m) == ["fp32"]
    with pytest.raises(BundleError, match=r"precision 'int8': the bundle has no int8 graphs; it has fp32$"):
        select_graphs(m, "int8")
    with pytest.raises(BundleError, match="precision 'fp16': the bundle has no fp16 graphs; it has fp32"):
        load_bundle(nano_bundle, precision="fp16")
    assert {g.precision for g in select_graphs(m, "fp32").values()} == {"fp32"}


def test_run_precision_int8_on_an_fp32_bundle_is_one_line(
    nano_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "--bundle", str(nano_bundle), "--dry-run", "--precision", "int8", "--quiet"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["harmowam-edge: error: precision 'int8': the bundle has no int8 graphs; it has fp32"]
