"""The simulated RealSense: renders RGB and aligned z16 depth of the shared world, headless (MUJOCO_GL=egl).

`SceneRenderer` does one offscreen render pass per frame and reads colour and depth from it together (depth is
aligned to colour by construction: same camera, same pixels). `SimCamera` implements the runtime's
`CameraSource`: a thread renders at the camera rate and keeps the newest `Frame` in a slot, stamped like the
RealSense source (exposure time on the host monotonic clock, device frame counter with gaps for dropped frames).
"""

from __future__ import annotations

import threading
import time

import mujoco
import numpy as np

from harmowam_edge.bundle.schema import CameraSpec
from harmowam_edge.cameras.frames import CameraHealth, Frame
from harmowam_edge.errors import HarmowamError
from harmowam_edge.sim.scene import Intrinsics, d435_intrinsics
from harmowam_edge.sim.world import SimWorld

# Where a D4xx reports no depth: closer than its minimum range or beyond its maximum. z16 0 means "no data".
DEPTH_MIN_M = 0.1
DEPTH_MAX_M = 10.0


class RenderError(HarmowamError):
    """Headless rendering could not start (no EGL / OpenGL)."""


def depth_to_z16(depth_m: np.ndarray, units_m: float) -> np.ndarray:
    """Metric z-depth to RealSense z16: rounded to `units_m`, 0 where out of range (as the device reports)."""
    valid = (depth_m >= DEPTH_MIN_M) & (depth_m <= DEPTH_MAX_M) & np.isfinite(depth_m)
    z = np.where(valid, np.rint(depth_m / units_m), 0.0)
    return np.clip(z, 0, 65535).astype(np.uint16)


class SceneRenderer:
    """One offscreen OpenGL context rendering one camera of a world. Use it from a single thread."""

    def __init__(self, world: SimWorld, camera: str, width: int, height: int, *, shadows: bool = False) -> None:
        model = world.model
        self.world = world
        self.width, self.height = width, height
        self.camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if self.camera_id < 0:
            raise RenderError(f"camera {camera!r}: not in the scene")
        try:
            self._gl = mujoco.GLContext(width, height)
            self._gl.make_current()
        except Exception as e:
            raise RenderError(
                f"camera {camera!r}: cannot open a headless OpenGL context ({e}); set MUJOCO_GL=egl and install "
                "libegl1 and libgl1-mesa-dri (or MUJOCO_GL=osmesa with libosmesa6)"
            ) from e
        self._con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        self._con.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=1000)
        # Shadows triple the cost of a frame on a software renderer; they are for people (videos), not policies.
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = shadows
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self._option = mujoco.MjvOption()
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._cam.fixedcamid = self.camera_id
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._rgb = np.empty((height, width, 3), np.uint8)
        self._depth = np.empty((height, width), np.float32)
        extent = model.stat.extent
        near = np.float32(model.vis.map.znear * extent)
        far = np.float32(model.vis.map.zfar * extent)
        # Reversed-Z projection (mjDEPTH_ZEROFAR): depth buffer value -> metric z along the optical axis.
        c = -(far + near) / (far - near)
        d = -(np.float32(2) * far * near) / (far - near)
        self._c = float(np.float32(-0.5) * c - np.float32(0.5))
        self._d = float(np.float32(-0.5) * d)
        self._far = float(far)

    def snapshot(self) -> float:
        """Copy the world's current state into the render scene (under the world lock); returns its sim time."""
        with self.world.lock:
            mujoco.mjv_updateScene(
                self.world.model,
                self.world.data,
                self._option,
                None,
                self._cam,
                mujoco.mjtCatBit.mjCAT_ALL,
                self._scene,
            )
            return float(self.world.data.time)

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Render the last snapshot: RGB uint8 [H, W, 3] and metric z-depth float32 [H, W] (inf = no surface)."""
        self._gl.make_current()
        mujoco.mjr_render(self._rect, self._scene, self._con)
        mujoco.mjr_readPixels(self._rgb, self._depth, self._rect, self._con)
        rgb = np.flipud(self._rgb).copy()  # OpenGL rows start at the bottom
        z = np.flipud(self._depth).astype(np.float64)
        with np.errstate(divide="ignore"):
            depth = self._d / (z + self._c)
        depth[depth >= self._far * 0.999] = np.inf
        return rgb, depth.astype(np.float32)

    def close(self) -> None:
        if self._con is not None:
            self._gl.make_current()
            self._con.free()
            self._con = None  # type: ignore[assignment]
            self._gl.free()


class SimCamera:
    """A `CameraSource` rendering one camera of the shared world at its frame rate, in its own thread."""

    def __init__(self, world: SimWorld, spec: CameraSpec, *, shadows: bool = False) -> None:
        self._world = world
        self._shadows = shadows
        self._spec = spec
        self.intrinsics: Intrinsics = d435_intrinsics(spec.width, spec.height)
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._frames = 0
        self._dropped = 0
        self._render_s: list[float] = []
        self._recent: list[float] = []
        self._error = ""
        self._failed = False

    @property
    def spec(self) -> CameraSpec:
        return self._spec

    @property
    def name(self) -> str:
        return self._spec.name

    def pose(self) -> np.ndarray:
        """Ground-truth optical-frame pose in the world (for checking hand-eye calibration)."""
        return self._world.camera_pose(self._spec.name)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._ready.clear()
        self._slot = None  # a restarted camera never serves a frame from before its stop (its counter restarts)
        self._thread = threading.Thread(target=self._run, name=f"sim-camera-{self.name}", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30.0)
        if self._failed:
            self.stop()
            raise RenderError(self._error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None

    def latest(self) -> Frame | None:
        return self._slot

    def wait_newer(self, after_frame_number: int | None, timeout: float) -> Frame | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                f = self._slot
                if f is not None and (after_frame_number is None or f.frame_number > after_frame_number):
                    return f
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(left)

    def health(self) -> CameraHealth:
        now = time.monotonic()
        recent = [t for t in self._recent if now - t <= 1.0]
        render = sorted(self._render_s[-200:])
        return CameraHealth(
            frames=self._frames,
            dropped=self._dropped,
            fps=float(len(recent)),
            last_error=self._error,
            failed=self._failed,
            extra={"render_ms_p50": 1e3 * render[len(render) // 2]} if render else {},
        )

    def _run(self) -> None:
        spec = self._spec
        try:
            renderer = SceneRenderer(self._world, spec.name, spec.width, spec.height, shadows=self._shadows)
        except Exception as e:
            self._error = str(e)
            self._failed = True
            self._ready.set()
            return
        self._ready.set()
        period = 1.0 / spec.fps
        t0 = time.monotonic()
        tick = 0
        number = 0
        try:
            while not self._stop.is_set():
                t_sim = renderer.snapshot()
                t_capture = self._world.host_time(t_sim)
                r0 = time.perf_counter()
                rgb, depth = renderer.render()
                z16 = depth_to_z16(depth, spec.depth_units_m) if spec.has_depth else None
                frame = Frame(
                    camera=spec.name,
                    color=rgb,
                    t_capture=t_capture,
                    frame_number=number + 1,
                    depth=z16,
                    depth_units_m=spec.depth_units_m,
                    t_device_ms=1e3 * t_sim,
                    t_received=time.monotonic(),
                )
                self._render_s.append(time.perf_counter() - r0)
                if len(self._render_s) > 1000:
                    del self._render_s[:500]
                with self._cond:
                    self._slot = frame
                    self._frames += 1
                    self._recent.append(frame.t_received)
                    if len(self._recent) > 4 * spec.fps:
                        del self._recent[: 2 * spec.fps]
                    self._cond.notify_all()
                # The next exposure: the next tick of the frame clock. Ticks we rendered too slowly for are
                # dropped frames, and the frame counter skips them as a device's would.
                tick += 1
                now = time.monotonic()
                late = int((now - (t0 + tick * period)) / period)
                if late > 0:
                    tick += late
                    self._dropped += late
                number = tick
                self._stop.wait(max(0.0, t0 + tick * period - time.monotonic()))
        except Exception as e:  # pragma: no cover - a GL failure mid-run; the runtime sees `failed`
            self._error = f"camera {spec.name!r}: rendering failed: {e}"
            self._failed = True
        finally:
            renderer.close()
            with self._cond:
                self._cond.notify_all()
