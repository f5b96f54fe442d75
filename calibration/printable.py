"""Printable boards: a PNG that carries its DPI and a vector PDF, both at true physical size.

The PDF is written by hand (a page of filled rectangles and one line of Helvetica), so it needs no extra
dependency and prints exactly: squares are vector shapes, not resampled pixels.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from calibration.boards import BoardLayout, BoardSpec, layout, rasterize
from calibration.errors import CalibrationError

PAPERS_MM = {"a4": (210.0, 297.0), "a3": (297.0, 420.0), "letter": (215.9, 279.4)}
_PT_PER_M = 72.0 / 0.0254


def print_margin(spec: BoardSpec) -> float:
    """White quiet zone around the squares: 40% of a square (at least 6 mm, at most a square). The detectors need
    some white around the outer squares; the paper's own border adds to it. The label sits in its outer part."""
    return min(spec.square, max(0.4 * spec.square, 0.006))


@dataclass(frozen=True)
class PrintedBoard:
    path: Path
    page_mm: tuple[float, float]
    board_mm: tuple[float, float]  # the squares area
    square_mm: float
    label: str


def board_label(spec: BoardSpec) -> str:
    w, h = spec.size_m
    text = f"{spec.describe()}  square {spec.square * 1000:.2f} mm"
    if spec.kind == "charuco":
        text += f", marker {spec.marker * 1000:.2f} mm"
    return text + f", board {w * 1000:.1f} x {h * 1000:.1f} mm. Print at 100% (no fit-to-page) and measure a square."


def _page(spec: BoardSpec, paper: str) -> tuple[BoardLayout, tuple[float, float], tuple[float, float]]:
    """Layout, page size (m) and the layout's offset on the page (m)."""
    lay = layout(spec, margin_m=print_margin(spec))
    need = lay.page_m
    if paper == "fit":
        return lay, need, (0.0, 0.0)
    if paper not in PAPERS_MM:
        raise CalibrationError(f"--paper {paper!r}: expected fit, {', '.join(PAPERS_MM)}")
    pw, ph = (v / 1000 for v in PAPERS_MM[paper])
    # Landscape when that is the only way the board fits.
    if (need[0] > pw or need[1] > ph) and need[0] <= ph and need[1] <= pw:
        pw, ph = ph, pw
    if need[0] > pw or need[1] > ph:
        raise CalibrationError(
            f"board {spec.describe()} needs {need[0] * 1000:.0f} x {need[1] * 1000:.0f} mm with "
            f"its margin; it does not fit on {paper} ({pw * 1000:.0f} x {ph * 1000:.0f} mm): "
            "use --paper fit, a larger paper, or smaller squares"
        )
    return lay, (pw, ph), ((pw - need[0]) / 2, (ph - need[1]) / 2)


def write_board(spec: BoardSpec, out: str | Path, dpi: float = 300.0, paper: str = "fit") -> PrintedBoard:
    """Write the board as PNG (with its DPI) or PDF (vector), chosen by the file extension."""
    out = Path(out)
    if dpi < 72 or dpi > 2400:
        raise CalibrationError(f"--dpi {dpi:g}: expected 72..2400")
    if not out.parent.exists():
        raise CalibrationError(f"{out}: folder {out.parent} does not exist")
    lay, page, offset = _page(spec, paper)
    label = board_label(spec)
    suffix = out.suffix.lower()
    if suffix == ".png":
        out.write_bytes(_png(lay, page, offset, label, dpi))
    elif suffix == ".pdf":
        out.write_bytes(_pdf(lay, page, offset, label))
    else:
        raise CalibrationError(f"{out}: expected a .png or .pdf file name")
    w, h = spec.size_m
    return PrintedBoard(out, (page[0] * 1000, page[1] * 1000), (w * 1000, h * 1000), spec.square * 1000, label)


def _png(lay: BoardLayout, page: tuple[float, float], offset: tuple[float, float], label: str, dpi: float) -> bytes:
    ppm = dpi / 0.0254
    board = rasterize(lay, ppm)
    canvas = np.full((round(page[1] * ppm), round(page[0] * ppm)), 255, np.uint8)
    x0, y0 = round(offset[0] * ppm), round(offset[1] * ppm)
    canvas[y0 : y0 + board.shape[0], x0 : x0 + board.shape[1]] = board[: canvas.shape[0] - y0, : canvas.shape[1] - x0]
    text_h = min(0.0025, 0.3 * lay.margin_m)  # cap height, m
    scale = text_h * ppm / 22  # Hershey simplex capitals are ~22 px tall at scale 1
    ty = y0 + board.shape[0] - int(0.25 * lay.margin_m * ppm)
    _put_fitted_text(
        canvas, label, (x0 + int(0.5 * lay.margin_m * ppm), ty), scale, board.shape[1] - int(lay.margin_m * ppm)
    )
    ok, buf = cv2.imencode(".png", canvas)
    if not ok:
        raise CalibrationError("could not encode the board PNG")
    return _with_dpi(buf.tobytes(), dpi)


def _put_fitted_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, max_width: int) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, _), _ = cv2.getTextSize(text, font, scale, 1)
    if w > max_width > 0:
        scale *= max_width / w
    cv2.putText(img, text, org, font, scale, 0, max(1, int(scale * 1.5)), cv2.LINE_AA)


def _with_dpi(png: bytes, dpi: float) -> bytes:
    """Insert a pHYs chunk (pixels per metre) after IHDR so viewers and printers know the physical size."""
    ppm = round(dpi / 0.0254)
    data = struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", len(data)) + b"pHYs" + data + struct.pack(">I", zlib.crc32(b"pHYs" + data) & 0xFFFFFFFF)
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def png_dpi(png: bytes) -> float | None:
    """The DPI stored in a PNG's pHYs chunk (None without one)."""
    i = png.find(b"pHYs")
    if i < 0:
        return None
    ppx, _, unit = struct.unpack(">IIB", png[i + 4 : i + 13])
    return ppx * 0.0254 if unit == 1 else None


def _pdf(lay: BoardLayout, page: tuple[float, float], offset: tuple[float, float], label: str) -> bytes:
    """A one-page PDF: MediaBox in points at true size, board as filled rectangles, PDF y axis up."""
    w_pt, h_pt = page[0] * _PT_PER_M, page[1] * _PT_PER_M
    ops = ["0 g"]
    for x0, y0, x1, y1 in lay.rects:
        px0 = (x0 + offset[0]) * _PT_PER_M
        py1 = h_pt - (y1 + offset[1]) * _PT_PER_M
        ops.append(f"{px0:.4f} {py1:.4f} {(x1 - x0) * _PT_PER_M:.4f} {(y1 - y0) * _PT_PER_M:.4f} re")
    ops.append("f")
    # ~2.5 mm capitals (Helvetica caps are ~0.72 em), in the outer part of the bottom margin; Helvetica averages
    # ~0.55 em per character: shrink the label to the board's width.
    size = min(0.0025 * _PT_PER_M / 0.72, 0.3 * lay.margin_m * _PT_PER_M / 0.72)
    size = min(size, (lay.page_m[0] - lay.margin_m) * _PT_PER_M / max(1, 0.55 * len(label)))
    tx = (offset[0] + 0.5 * lay.margin_m) * _PT_PER_M
    ty = h_pt - (offset[1] + lay.page_m[1] - 0.25 * lay.margin_m) * _PT_PER_M
    text = label.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    ops.append(f"BT /F1 {size:.2f} Tf {tx:.2f} {ty:.2f} Td ({text}) Tj ET")
    content = "\n".join(ops).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w_pt:.4f} {h_pt:.4f}] /Contents 4 0 R "
            f"/Resources << /Font << /F1 5 0 R >> >> >>"
        ).encode(),
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
