"""The four scenes: id (training), and the unseen background, position and semantics environments."""

from __future__ import annotations

import numpy as np
import pytest

from harmowam_edge.bundle.schema import CameraSpec
from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import scene

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("arms", [1, 2])
def test_position_scene_places_every_object_outside_the_training_workspace_within_reach(arms):
    (x0, x1), (y0, y1) = scene.workspace(arms)
    for seed in range(100_000, 100_030):
        objects, goal = scene.place_scene(seed, arms, "position")
        for name, (pos, _) in objects.items():
            xy = pos[:2]
            inside = x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1
            assert not inside, (seed, name, xy)
            assert scene.reachable(xy, arms)
        if arms == 1:
            assert not (x0 <= goal[0] <= x1 and y0 <= goal[1] <= y1)
        assert scene.reachable(goal[:2], arms, every_arm=True)
    # ... while id's placements are all inside it.
    for seed in range(30):
        for pos, _ in scene.place_objects(seed, arms).values():
            assert x0 <= pos[0] <= x1
            assert y0 <= pos[1] <= y1


def test_background_shares_id_layouts_and_seeds_its_colours():
    for seed in (3, 100_004):
        a, ga = scene.place_scene(seed, 1, "id")
        b, gb = scene.place_scene(seed, 1, "background")
        np.testing.assert_array_equal(ga, gb)
        for name in a:
            np.testing.assert_array_equal(a[name][0], b[name][0])
    assert scene.appearance(5, "id") == scene.Appearance() == scene.appearance(5, "position")
    assert scene.appearance(5, "background") == scene.appearance(5, "background")
    assert scene.appearance(5, "background") != scene.appearance(6, "background")
    assert scene.appearance(5, "background").table_rgba != scene.Appearance().table_rgba


def test_semantics_gives_each_target_a_shape_and_shade_never_used_in_training():
    for train, new in zip(scene.OBJECTS, scene.SEMANTIC_OBJECTS, strict=True):
        assert train.name == new.name  # the task table's names
        assert (train.kind, train.size) != (new.kind, new.size)
    shades = dict(scene.appearance(100_000, "semantics").object_rgba)
    for obj in scene.OBJECTS:
        assert np.max(np.abs(np.subtract(shades[obj.name][:3], obj.rgba[:3]))) > 0.05
    with pytest.raises(ConfigError, match="--scene 'mars'"):
        scene.scene_objects("mars")


def test_scenes_render_differently_and_deterministically():
    from harmowam_edge.sim.camera import SceneRenderer
    from harmowam_edge.sim.world import SimWorld

    cam = CameraSpec("front", 64, 48, 30, ("color",))

    def render(name: str, seed: int) -> np.ndarray:
        world = SimWorld(1, [cam], seed=seed, scene_name=name)
        r = SceneRenderer(world, "front", 64, 48)
        try:
            r.snapshot()
            return r.render()[0].astype(np.int16)
        finally:
            r.close()

    ident = render("id", 100_001)
    background = render("background", 100_001)
    np.testing.assert_array_equal(background, render("background", 100_001))  # a seed decides it
    assert np.abs(background - ident).mean() > 10  # walls, table, light
    assert np.abs(render("background", 100_002) - background).mean() > 5
    semantics = render("semantics", 100_001)
    assert 0 < np.abs(semantics - ident).mean() < np.abs(background - ident).mean()  # only the objects changed
    world = SimWorld(1, [], seed=0, scene_name="semantics")
    assert world.object_spec("red_cube").kind == "cylinder"
