"""Looks of the synthetic objects and the background, drawn with vectorised numpy masks.

Each of the 8 classes (same order as ``sounds.CLASS_NAMES``) has its own shape, colour,
texture and motion. Frames are RGB uint8 arrays of shape (height, width, 3). An object's
per-instance randomness (motion phase, direction, speed) lives in a small ``rng_state``
dict made once by :func:`object_state`, so drawing a frame at time ``t`` is a pure function.
"""

from __future__ import annotations

import math

import numpy as np

from .sounds import CLASS_NAMES

#          shape        colour (RGB)       motion
STYLES: tuple[tuple[str, tuple[int, int, int], str], ...] = (
    ("circle", (245, 205, 40), "static"),      # flute: shaded yellow disc
    ("square", (50, 90, 230), "drift"),        # engine: blue checkered square sliding sideways
    ("triangle", (225, 45, 45), "bounce"),     # bird: red triangle hopping
    ("ring", (240, 240, 240), "orbit"),        # clock: white ring circling
    ("cross", (215, 55, 205), "rotate"),       # siren: magenta cross spinning
    ("diamond", (45, 205, 80), "pulsate"),     # hum: green diamond breathing
    ("stripes", (245, 135, 25), "shake"),      # drum: orange/black striped rectangle shaking
    ("star", (35, 215, 225), "figure8"),       # warble: cyan star on a figure-eight
)
assert len(STYLES) == len(CLASS_NAMES)

#: half extent of each shape in units of the object's radius (x, y)
EXTENTS = {"stripes": (1.0, 0.7)}
#: largest displacement of any motion, in units of the object's radius (for placement)
MOTION_MARGIN = 0.45

__all__ = ["STYLES", "MOTION_MARGIN", "object_state", "object_pose", "draw_object", "Background"]


def object_state(rng: np.random.Generator) -> dict:
    """Per-instance motion parameters (phase, direction, speed factor)."""
    return {"phase": float(rng.uniform(0, 2 * np.pi)), "sign": float(rng.choice([-1.0, 1.0])),
            "speed": float(rng.uniform(0.8, 1.25))}


def object_pose(class_index: int, center: tuple[float, float], size: float, t: float,
                rng_state: dict) -> tuple[float, float, float, float]:
    """Centre (x, y), radius and rotation angle of an object at time ``t`` seconds.

    ``size`` is the object's nominal radius in pixels; displacements stay below
    ``MOTION_MARGIN * size``.
    """
    motion = STYLES[class_index][2]
    ph, sg, sp = rng_state["phase"], rng_state["sign"], rng_state["speed"]
    w = 2 * math.pi * sp
    x, y = center
    r, ang, a = size, 0.0, MOTION_MARGIN * size
    if motion == "drift":
        x += a * math.sin(0.25 * w * t + ph)
    elif motion == "bounce":
        y -= a * (2 * abs(math.sin(0.6 * w * t + ph)) - 1)
    elif motion == "orbit":
        x += a * math.cos(sg * 0.3 * w * t + ph)
        y += a * math.sin(sg * 0.3 * w * t + ph)
    elif motion == "rotate":
        ang = sg * 0.25 * w * t + ph
    elif motion == "pulsate":
        r = size * (1 + 0.3 * math.sin(0.5 * w * t + ph))
    elif motion == "shake":
        x += 0.3 * a * math.sin(3.1 * w * t + ph)
        y += 0.3 * a * math.sin(2.3 * w * t + 2 * ph)
    elif motion == "figure8":
        x += a * math.sin(0.2 * w * t + ph)
        y += 0.7 * a * math.sin(0.4 * w * t + 2 * ph)
    return float(x), float(y), float(r), float(ang)


def _radius(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sqrt(u^2 + v^2) with exactly rounded operations (np.hypot's SIMD kernels differ by CPU)."""
    return np.sqrt(u * u + v * v)


def _mask(shape: str, u: np.ndarray, v: np.ndarray, ang: float) -> np.ndarray:
    """Boolean mask of a shape on normalised coordinates (u, v) in units of the radius."""
    rr = _radius(u, v)
    if shape == "circle":
        return rr <= 1
    if shape in ("square", "stripes"):
        ex, ey = EXTENTS.get(shape, (1.0, 1.0))
        return (np.abs(u) <= ex) & (np.abs(v) <= ey)
    if shape == "triangle":                       # apex up
        return (v >= -1) & (v <= 1) & (np.abs(u) <= (v + 1) / 2)
    if shape == "ring":
        return (rr <= 1) & (rr >= 0.55)
    if shape == "cross":
        c, s = math.cos(ang), math.sin(ang)
        ur, vr = (c * u + s * v) / 0.95, (-s * u + c * v) / 0.95
        return (np.abs(ur) <= 1) & (np.abs(vr) <= 1) & ((np.abs(ur) <= 0.3) | (np.abs(vr) <= 0.3))
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1
    if shape == "star":
        # cos(5 theta) of the polar angle theta, as the Chebyshev polynomial T5(cos theta)
        c = np.divide(u, rr, out=np.ones(np.broadcast_shapes(u.shape, v.shape)), where=rr > 0)
        c2 = c * c
        cos5 = c * (5 + c2 * (-20 + 16 * c2))
        return rr <= 0.42 + 0.58 * ((cos5 + 1) / 2) ** 2
    raise ValueError(shape)


def draw_object(canvas: np.ndarray, class_index: int, center: tuple[float, float], size: float,
                t: float, rng_state: dict, opacity: float = 1.0) -> tuple[int, int, int, int]:
    """Draw one object into ``canvas`` (H, W, 3 uint8, in place) at time ``t``.

    ``opacity`` < 1 blends the object with what lies under it (a distant, hazy object).
    Returns its bounding box ``(x0, y0, x1, y1)`` in pixels, clipped to the frame, with
    x1/y1 exclusive (a numpy slice). The box is empty (x0 == x1) if fully off-frame.
    """
    shape, colour, _ = STYLES[class_index]
    h, w = canvas.shape[:2]
    cx, cy, r, ang = object_pose(class_index, center, size, t, rng_state)
    ex, ey = EXTENTS.get(shape, (1.0, 1.0))
    x0, x1 = max(0, int(np.floor(cx - ex * r))), min(w, int(np.ceil(cx + ex * r)) + 1)
    y0, y1 = max(0, int(np.floor(cy - ey * r))), min(h, int(np.ceil(cy + ey * r)) + 1)
    if x0 >= x1 or y0 >= y1:
        return (x0, y0, x0, y0)
    u = (np.arange(x0, x1) + 0.5 - cx)[None, :] / r
    v = (np.arange(y0, y1) + 0.5 - cy)[:, None] / r
    mask = _mask(shape, u, v, ang)
    col = np.asarray(colour, np.float32)
    if shape == "circle":                         # radial shading
        shade = 1.0 - 0.35 * _radius(u, v)
    elif shape == "square":                       # checkerboard
        shade = 0.7 + 0.3 * ((np.floor((u + 1) * 2.5) + np.floor((v + 1) * 2.5)) % 2)
    elif shape == "stripes":                      # colour / near-black vertical stripes
        shade = 0.15 + 0.85 * (np.floor((u + 1) * 3) % 2)
    elif shape == "star":                         # bright core
        shade = 1.0 - 0.3 * np.clip(_radius(u, v), 0, 1)
    else:
        shade = np.ones((1, 1), np.float32)
    pix = np.clip(col * np.broadcast_to(shade, mask.shape)[..., None], 0, 255).astype(np.uint8)
    window = canvas[y0:y1, x0:x1]
    if opacity < 1.0:                             # integer blend: the same bytes on every CPU
        a = int(round(256 * opacity))
        pix = ((a * pix.astype(np.int32) + (256 - a) * window.astype(np.int32) + 128) >> 8).astype(np.uint8)
    window[mask] = pix[mask]
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return (x0, y0, x0, y0)
    return (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)


class Background:
    """Low-contrast, smooth noise texture that drifts slowly over time.

    The texture blends three smooth random fields with slowly rotating weights, on top of
    a random grey-ish base colour and a fixed fine grain.
    """

    def __init__(self, width: int, height: int, rng: np.random.Generator, contrast: float = 18.0):
        self.shape = (height, width)
        base = rng.uniform(60, 120) + rng.uniform(-15, 15, 3)
        grid = 6
        uy, ux = self._interp(height, grid), self._interp(width, grid)
        fields = rng.standard_normal((3, grid, grid, 3))
        # bilinear upsampling of the coarse fields as an explicit sum in a fixed order (an einsum
        # or BLAS call would sum in an order that depends on the CPU's SIMD width)
        up = np.zeros((3, height, width, 3))
        for g in range(grid):
            for f in range(grid):
                up += uy[None, :, g, None, None] * fields[:, None, None, g, f, :] * ux[None, None, :, f, None]
        self.fields = up.astype(np.float32) * contrast
        self.static = (base + rng.normal(0, 3, (height, width, 3))).astype(np.float32)
        self.speed = float(rng.uniform(0.05, 0.15))
        self.phase = float(rng.uniform(0, 2 * np.pi))

    @staticmethod
    def _interp(n: int, grid: int) -> np.ndarray:
        """(n, grid) matrix of linear interpolation weights from a coarse grid to n pixels."""
        pos = np.linspace(0, grid - 1, n)
        lo = np.minimum(np.floor(pos).astype(int), grid - 2)
        frac = pos - lo
        m = np.zeros((n, grid))
        m[np.arange(n), lo] = 1 - frac
        m[np.arange(n), lo + 1] = frac
        return m

    def frame(self, t: float) -> np.ndarray:
        """The background at time ``t`` seconds as a fresh (H, W, 3) uint8 array."""
        a = 2 * np.pi * self.speed * t + self.phase
        f = self.fields                           # plain sums: no BLAS call in forked workers
        img = self.static + np.float32(math.cos(a)) * f[0] + np.float32(math.sin(a)) * f[1] \
            + np.float32(0.5 * math.cos(0.7 * a)) * f[2]
        return np.clip(img, 0, 255).astype(np.uint8)
