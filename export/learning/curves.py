"""The loss-curve PNG of a training run (Pillow, from the sim extra; skipped with a note when it is missing)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

COLORS = {
    "total": (20, 20, 20),
    "world_model": (31, 119, 180),
    "variance": (148, 103, 189),
    "reactive": (44, 160, 44),
    "predictive": (255, 127, 14),
    "gate": (140, 86, 75),
    "val_total": (214, 39, 40),
}


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over `window` values (the first ones over what there is)."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def write_loss_curve(
    train: Sequence[Mapping[str, float]],
    val: Sequence[tuple[int, Mapping[str, float]]],
    path: Path,
    size: tuple[int, int] = (900, 500),
) -> bool:
    """Per-term training losses (smoothed, log scale) and the validation total; False if Pillow is missing."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return False
    w, h = size
    left, right, top, bottom = 70, 170, 20, 40
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    series: dict[str, list[tuple[int, float]]] = {}
    window = max(1, len(train) // 100)
    for key in COLORS:
        if key == "val_total" or not train or key not in train[0]:
            continue
        vals = smooth([float(r[key]) for r in train], window)
        series[key] = [(i + 1, v) for i, v in enumerate(vals)]
    if val:
        series["val_total"] = [(s, float(r["total"])) for s, r in val if "total" in r]
    points = [v for s in series.values() for _, v in s if v > 0 and math.isfinite(v)]
    if not points:
        img.save(path)
        return True
    lo, hi = math.log10(min(points)), math.log10(max(points))
    if hi - lo < 1e-6:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(len(train), max((s for s, _ in val), default=1), 1)

    def xy(step: int, v: float) -> tuple[float, float]:
        x = left + (w - left - right) * step / n
        y = top + (h - top - bottom) * (hi - math.log10(max(v, 10**lo))) / (hi - lo)
        return x, y

    draw.rectangle([left, top, w - right, h - bottom], outline=(160, 160, 160))
    for dec in range(math.floor(lo), math.ceil(hi) + 1):
        if lo <= dec <= hi:
            _, y = xy(0, 10.0**dec)
            draw.line([left, y, w - right, y], fill=(225, 225, 225))
            draw.text((8, y - 6), f"1e{dec}", fill=(80, 80, 80))
    draw.text((left, h - bottom + 8), "step 0", fill=(80, 80, 80))
    draw.text((w - right - 60, h - bottom + 8), f"step {n}", fill=(80, 80, 80))
    for i, (key, pts) in enumerate(series.items()):
        color = COLORS[key]
        if len(pts) > 1:
            stride = max(1, len(pts) // 1500)
            draw.line([xy(s, v) for s, v in pts[::stride]], fill=color, width=2 if key != "val_total" else 3)
        for s, v in pts if key == "val_total" else ():
            x, y = xy(s, v)
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        draw.text((w - right + 10, top + 16 * i), key, fill=color)
    img.save(path)
    return True
