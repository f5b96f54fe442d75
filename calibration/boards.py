"""Calibration boards: the spec given on the command line, the board's geometry and its printable layout.

Spec strings (sizes in metres):

- ``chessboard:COLSxROWS:SQUARE``: COLS x ROWS *inner corners* (OpenCV's pattern size), e.g. ``chessboard:9x6:0.025``.
- ``charuco:COLSxROWS:SQUARE:MARKER[:DICT]``: COLS x ROWS *squares* (OpenCV's ``CharucoBoard`` size), markers of
  ``MARKER`` metres from the ArUco dictionary ``DICT`` (default ``DICT_5X5_100``), e.g.
  ``charuco:7x5:0.04:0.03:DICT_5X5_100``.

Parsing and geometry are pure numpy; OpenCV is needed only to draw ArUco markers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from calibration.errors import BoardSpecError

BoardKind = Literal["chessboard", "charuco"]

# Predefined ArUco dictionaries: name -> (bits per side, number of markers).
ARUCO_DICTIONARIES: dict[str, tuple[int, int]] = {
    **{f"DICT_{n}X{n}_{k}": (n, k) for n in (4, 5, 6, 7) for k in (50, 100, 250, 1000)},
    "DICT_ARUCO_ORIGINAL": (5, 1024),
    "DICT_APRILTAG_16h5": (4, 30),
    "DICT_APRILTAG_25h9": (5, 35),
    "DICT_APRILTAG_36h10": (6, 2320),
    "DICT_APRILTAG_36h11": (6, 587),
    "DICT_ARUCO_MIP_36h12": (6, 250),
}
DEFAULT_DICTIONARY = "DICT_5X5_100"

_EXAMPLES = "e.g. chessboard:9x6:0.025 or charuco:7x5:0.04:0.03:DICT_5X5_100"


@dataclass(frozen=True)
class BoardSpec:
    """A planar calibration target. Board frame: origin at the first corner, x along columns, y along rows, z into
    the board (OpenCV's convention), metres."""

    kind: BoardKind
    cols: int  # chessboard: inner corners per row; charuco: squares per row
    rows: int  # chessboard: inner corners per column; charuco: squares per column
    square: float  # square side, m
    marker: float = 0.0  # charuco marker side, m
    dictionary: str = ""  # charuco ArUco dictionary name

    @classmethod
    def parse(cls, text: str) -> BoardSpec:
        """Parse a spec string; a BoardSpecError says which part is wrong and what was expected."""
        parts = text.strip().split(":")
        kind = parts[0].lower()
        if kind not in ("chessboard", "charuco"):
            raise BoardSpecError(
                f"board spec {text!r}: unknown board type {parts[0]!r}, expected chessboard or charuco ({_EXAMPLES})"
            )
        want = (2,) if kind == "chessboard" else (3, 4)
        if len(parts) - 1 not in want:
            form = (
                "chessboard:COLSxROWS:SQUARE_M"
                if kind == "chessboard"
                else ("charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT]")
            )
            raise BoardSpecError(f"board spec {text!r}: expected {form} ({_EXAMPLES})")
        m = re.fullmatch(r"(\d+)[xX](\d+)", parts[1])
        if not m:
            raise BoardSpecError(f"board spec {text!r}: size {parts[1]!r} must be COLSxROWS, e.g. 9x6")
        cols, rows = int(m.group(1)), int(m.group(2))
        square = _metres(text, "square size", parts[2])
        if kind == "chessboard":
            spec = cls("chessboard", cols, rows, square)
        else:
            marker = _metres(text, "marker size", parts[3])
            dictionary = parts[4] if len(parts) == 5 else DEFAULT_DICTIONARY
            spec = cls("charuco", cols, rows, square, marker, dictionary)
        spec.validate(text)
        return spec

    def validate(self, text: str | None = None) -> None:
        where = f"board spec {text or self.describe()!r}"
        if self.kind == "chessboard":
            if self.cols < 3 or self.rows < 3:
                raise BoardSpecError(
                    f"{where}: a chessboard needs at least 3x3 inner corners, got "
                    f"{self.cols}x{self.rows} (count inner corners, not squares)"
                )
        else:
            if self.cols < 3 or self.rows < 3:
                raise BoardSpecError(
                    f"{where}: a ChArUco board needs at least 3x3 squares, got {self.cols}x{self.rows}"
                )
            if self.dictionary not in ARUCO_DICTIONARIES:
                known = ", ".join(sorted(ARUCO_DICTIONARIES))
                raise BoardSpecError(f"{where}: unknown ArUco dictionary {self.dictionary!r}, expected one of {known}")
            if not 0 < self.marker < self.square:
                raise BoardSpecError(
                    f"{where}: marker size {self.marker} m must be smaller than the square size {self.square} m"
                )
            bits, count = ARUCO_DICTIONARIES[self.dictionary]
            if self.marker_count > count:
                raise BoardSpecError(
                    f"{where}: a {self.cols}x{self.rows} board needs {self.marker_count} markers but "
                    f"{self.dictionary} has only {count}; use a larger dictionary"
                )
            if self.marker / (bits + 2) < 0.0005:
                raise BoardSpecError(
                    f"{where}: marker cells of {self.marker / (bits + 2) * 1000:.2f} mm are too small "
                    "to print and detect; use larger markers"
                )

    def describe(self) -> str:
        """The canonical spec string (parses back to the same spec)."""
        if self.kind == "chessboard":
            return f"chessboard:{self.cols}x{self.rows}:{_fmt(self.square)}"
        return f"charuco:{self.cols}x{self.rows}:{_fmt(self.square)}:{_fmt(self.marker)}:{self.dictionary}"

    @property
    def squares(self) -> tuple[int, int]:
        """Number of squares (columns, rows) on the printed board."""
        if self.kind == "chessboard":
            return self.cols + 1, self.rows + 1
        return self.cols, self.rows

    @property
    def corner_grid(self) -> tuple[int, int]:
        """Inner corners (columns, rows): the points a detector returns."""
        if self.kind == "chessboard":
            return self.cols, self.rows
        return self.cols - 1, self.rows - 1

    @property
    def corner_count(self) -> int:
        c, r = self.corner_grid
        return c * r

    @property
    def marker_count(self) -> int:
        return (self.cols * self.rows) // 2

    @property
    def size_m(self) -> tuple[float, float]:
        """Physical size of the squares area (width, height), m."""
        c, r = self.squares
        return c * self.square, r * self.square

    @property
    def symmetric(self) -> bool:
        """A chessboard whose corner grid looks the same rotated 180°: its pose is ambiguous (bad for hand-eye)."""
        return self.kind == "chessboard" and (self.cols % 2) == (self.rows % 2)

    def object_points(self) -> np.ndarray:
        """Inner corners in the board frame, float32 [N, 3], in the order a detector reports them (row-major)."""
        c, r = self.corner_grid
        xs, ys = np.meshgrid(np.arange(c), np.arange(r))
        # Chessboard corners start at the first inner corner; ChArUco corners one square in from the board edge.
        offset = 0.0 if self.kind == "chessboard" else self.square
        pts = np.stack([xs.ravel() * self.square, ys.ravel() * self.square, np.zeros(c * r)], axis=1)
        if self.kind == "charuco":
            pts[:, :2] += offset
        return pts.astype(np.float32)

    def origin_in_squares_area(self) -> tuple[float, float]:
        """Where the board frame's origin lies relative to the top-left of the squares area, m."""
        return (self.square, self.square) if self.kind == "chessboard" else (0.0, 0.0)


def _metres(text: str, what: str, value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise BoardSpecError(f"board spec {text!r}: {what} {value!r} is not a number (metres)") from None
    if not math.isfinite(v) or v <= 0:
        raise BoardSpecError(f"board spec {text!r}: {what} must be a positive number of metres, got {value!r}")
    if v > 0.5:
        raise BoardSpecError(
            f"board spec {text!r}: {what} {value} is in metres and looks too large: did you mean "
            f"{v / 1000:g} (millimetres given)?"
        )
    return v


def _fmt(x: float) -> str:
    return f"{x:.6g}"


# ----------------------------------------------------------------------------------------------------------------
# Printable layout: black rectangles in board-page coordinates (metres, origin top-left of the page, y down).


@dataclass(frozen=True)
class BoardLayout:
    """What to print: black rectangles (x0, y0, x1, y1) in metres on a white page of `page_m`."""

    spec: BoardSpec
    page_m: tuple[float, float]  # page width, height incl. the white margin
    margin_m: float  # white quiet zone around the squares area (detectors need it)
    rects: tuple[tuple[float, float, float, float], ...]

    def board_to_page(self, xy: np.ndarray) -> np.ndarray:
        """Board-frame (x, y) metres -> page metres."""
        ox, oy = self.spec.origin_in_squares_area()
        return np.asarray(xy, dtype=np.float64) + np.array([self.margin_m + ox, self.margin_m + oy])


def layout(spec: BoardSpec, margin_m: float | None = None) -> BoardLayout:
    """The board as black rectangles. Chessboard squares directly; ChArUco squares plus each marker's black cells."""
    margin = spec.square if margin_m is None else margin_m
    ncols, nrows = spec.squares
    rects: list[tuple[float, float, float, float]] = []
    sq = spec.square
    if spec.kind == "chessboard":
        for r in range(nrows):
            for c in range(ncols):
                if (r + c) % 2 == 1:
                    rects.append((margin + c * sq, margin + r * sq, margin + (c + 1) * sq, margin + (r + 1) * sq))
    else:
        cells = _charuco_marker_cells(spec)
        marker_squares = {(r, c) for (r, c) in cells}
        for r in range(nrows):
            for c in range(ncols):
                if (r, c) not in marker_squares:
                    rects.append((margin + c * sq, margin + r * sq, margin + (c + 1) * sq, margin + (r + 1) * sq))
        for (r, c), bits in cells.items():
            n = bits.shape[0]
            cell = spec.marker / n
            x0 = margin + c * sq + (sq - spec.marker) / 2
            y0 = margin + r * sq + (sq - spec.marker) / 2
            for i in range(n):
                # Merge runs of black cells in a row into one rectangle: fewer, cleaner PDF paths.
                j = 0
                while j < n:
                    if bits[i, j]:
                        k = j
                        while k + 1 < n and bits[i, k + 1]:
                            k += 1
                        rects.append((x0 + j * cell, y0 + i * cell, x0 + (k + 1) * cell, y0 + (i + 1) * cell))
                        j = k + 1
                    else:
                        j += 1
    w, h = spec.size_m
    return BoardLayout(spec, (w + 2 * margin, h + 2 * margin), margin, tuple(rects))


def _charuco_marker_cells(spec: BoardSpec) -> dict[tuple[int, int], np.ndarray]:
    """(square row, square col) -> bool [n+2, n+2] black cells of the marker there (border included).

    Marker placement and ids come from OpenCV's own CharucoBoard, so a printed board matches its detector.
    """
    import cv2

    board = make_cv_board(spec)
    dictionary = board.getDictionary()
    bits = ARUCO_DICTIONARIES[spec.dictionary][0]
    out: dict[tuple[int, int], np.ndarray] = {}
    for corners, marker_id in zip(board.getObjPoints(), np.asarray(board.getIds()).ravel(), strict=True):
        centre = np.asarray(corners, dtype=np.float64)[:, :2].mean(axis=0)
        c, r = int(centre[0] // spec.square), int(centre[1] // spec.square)
        img = cv2.aruco.generateImageMarker(dictionary, int(marker_id), bits + 2, borderBits=1)
        out[(r, c)] = img < 128
    return out


def make_cv_board(spec: BoardSpec) -> Any:
    """The OpenCV `CharucoBoard` of a ChArUco spec."""
    import cv2

    if spec.kind != "charuco":
        raise BoardSpecError(f"{spec.describe()} is not a ChArUco board")
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, spec.dictionary))
    return cv2.aruco.CharucoBoard((spec.cols, spec.rows), spec.square, spec.marker, dictionary)


def rasterize(lay: BoardLayout, px_per_m: float) -> np.ndarray:
    """The page as a uint8 grey image (white 255, black 0) at `px_per_m`, area-averaged at rectangle edges."""
    w = round(lay.page_m[0] * px_per_m)
    h = round(lay.page_m[1] * px_per_m)
    img = np.ones((h, w), dtype=np.float32)
    for x0, y0, x1, y1 in lay.rects:
        fx0, fy0, fx1, fy1 = x0 * px_per_m, y0 * px_per_m, x1 * px_per_m, y1 * px_per_m
        c0, c1 = math.floor(fx0), math.ceil(fx1)
        r0, r1 = math.floor(fy0), math.ceil(fy1)
        # Coverage of each pixel column/row by the rectangle, so edges land at sub-pixel positions exactly.
        cols = np.clip(np.minimum(np.arange(c0, c1) + 1, fx1) - np.maximum(np.arange(c0, c1), fx0), 0, 1)
        rows = np.clip(np.minimum(np.arange(r0, r1) + 1, fy1) - np.maximum(np.arange(r0, r1), fy0), 0, 1)
        img[r0:r1, c0:c1] -= rows[:, None] * cols[None, :]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
