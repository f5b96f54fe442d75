"""The manifest schema: round trips, and every bad field is named in the error."""

from __future__ import annotations

import copy
import json

import pytest

from harmowam_edge.bundle.schema import (
    BundleSchemaError,
    CameraSpec,
    EnginePlan,
    EngineSet,
    GateParams,
    GraphSpec,
    Manifest,
    NetworkSpec,
    PolicyParams,
    Provenance,
    TaskTable,
    TensorSpec,
    engine_folder_name,
    reference_action_space,
)

SHA = "ab" * 32


def _graph(name: str, precision: str = "fp32") -> GraphSpec:
    return GraphSpec(
        file=f"{name}.{precision}.onnx",
        sha256=SHA,
        precision=precision,  # type: ignore[arg-type]
        inputs=(TensorSpec("joint_pos", (1, 7), "float32"),),
        outputs=(TensorSpec("actions", (1, 12, 7), "float32"),),
    )


def _manifest(arms: int = 1) -> Manifest:
    space = reference_action_space(arms)
    nets = {
        n: NetworkSpec(n, {"fp32": _graph(n)}, "fp32", params=10, flops=20)
        for n in ("world_model", "gate", "reactive_expert", "predictive_expert")
    }
    return Manifest(
        precision="fp32",
        networks=nets,
        policy=PolicyParams(12, space.size, 48.0, 4, "unrolled", 4, GateParams()),
        action_space=space,
        cameras=(CameraSpec("wrist", 640, 480, 30),),
        tasks=TaskTable("tasks.npy", SHA, ("pick_red", "pick_blue"), 32),
        provenance=Provenance(SHA, "ckpt", "nano", "2026-11-24T00:00:00Z", True, {"torch": "2.13.0"}, {}),
        files={"world_model.fp32.onnx": SHA, "tasks.npy": SHA},
    )


@pytest.mark.parametrize("arms", [1, 2])
def test_manifest_round_trips_through_json(arms: int) -> None:
    m = _manifest(arms)
    again = Manifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m
    assert again.action_space.size == 7 * arms
    assert again.tasks.row("pick_blue") == 1


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["policy"].__setitem__("chunk_size", -1), "policy.chunk_size: expected an integer >= 1"),
        (lambda d: d["policy"].__setitem__("action_dim", 3), "policy.action_dim: expected the action space's size"),
        (lambda d: d["policy"].__setitem__("flow_mode", "step"), "policy.flow_mode: 'step' needs"),
        (lambda d: d["policy"]["gate"].__setitem__("low", 0.99), "policy.gate"),
        (lambda d: d["networks"].pop("gate"), "networks.gate: missing"),
        (lambda d: d["networks"]["gate"]["graphs"]["fp32"].__setitem__("sha256", "xyz"), "networks.gate.graphs.fp32"),
        (
            lambda d: d["networks"]["gate"]["graphs"]["fp32"]["inputs"][0].__setitem__("shape", [1, 0]),
            "networks.gate.graphs.fp32.inputs[0].shape[1]",
        ),
        (lambda d: d["cameras"][0].__setitem__("streams", ["depth"]), "cameras[0].streams"),
        (lambda d: d["action_space"]["arms"][0]["joints"][1].__setitem__("upper", -5.0), "joints[1].upper"),
        (lambda d: d["files"].__setitem__("../etc/passwd", SHA), "files: expected relative paths"),
        (lambda d: d.__setitem__("schema_version", 99), "schema_version: this runtime reads schema 1"),
    ],
)
def test_bad_fields_are_named(mutate, expected: str) -> None:
    d = copy.deepcopy(_manifest().to_dict())
    mutate(d)
    with pytest.raises(BundleSchemaError) as err:
        Manifest.from_dict(d, source="bundle/manifest.json")
    assert str(err.value).startswith("bundle/manifest.json: ")
    assert expected in str(err.value)


def test_engine_set_round_trips_and_folder_is_filesystem_safe() -> None:
    plan = EnginePlan("engines/x/world_model.plan", SHA, "world_model.fp16.onnx", SHA, "fp16")
    es = EngineSet("10.3.0", "NVIDIA Jetson AGX Orin", "8.7", "2026-11-24T00:00:00Z", {"world_model": plan})
    assert EngineSet.from_dict(es.to_dict(), "engines.json") == es
    assert engine_folder_name("10.3.0", "NVIDIA Jetson AGX Orin") == "10.3.0_nvidia-jetson-agx-orin"
