"""`harmowam-edge bench` and `export bench` time ONNX Runtime sessions with the same options (issue 11, item 12):
compared on real sessions over the same graph, and in the words both benches print."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmowam_edge.bundle import load_bundle
from harmowam_edge.engines.onnxruntime_engine import session_settings

SPINNING = "session.intra_op.allow_spinning"


def _options(session) -> tuple:
    o = session.get_session_options()
    return (
        o.intra_op_num_threads,
        o.inter_op_num_threads,
        o.graph_optimization_level,
        o.execution_mode,
        o.get_session_config_entry(SPINNING),
    )


def test_runtime_engines_and_export_bench_sessions_use_the_same_options(nano_bundle: Path) -> None:
    pytest.importorskip("torch", reason="export's bench sessions live in export.pipeline (the export extra)")
    from export.pipeline import ort_session, ort_settings

    with load_bundle(nano_bundle, threads=2) as bundle:
        for name, engine in bundle.engines.items():
            runtime = _options(engine._session)  # type: ignore[attr-defined]
            export = _options(ort_session(engine.path, 2))  # type: ignore[attr-defined]
            assert runtime == export, name
            assert runtime[0] == 2
            assert runtime[4] == "0"  # spinning off in both
            assert engine.settings == session_settings(2, False)  # type: ignore[attr-defined]
    assert session_settings(2, False) == ort_settings(2)
