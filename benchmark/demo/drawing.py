"""Synthetic chest radiographs whose findings are CAUSED by what is drawn.

A picture is drawn in float grey levels (0 = black, 1 = white) in this order:

1. anatomy: dark background, bright body, two darker lung fields (one for a lateral view)
   with faint ribs, a bright mediastinum and heart (a wider heart for cardiomegaly);
2. findings inside the lungs (effusion, atelectasis, consolidation, edema, pneumonia,
   COVID-19 ground glass);
3. smooth and fine noise;
4. pneumothorax: a flat, very dark region without texture along the lateral edge / apex of
   a lung (after the noise, so it has none), with its exact pixel mask;
5. exposure jitter (gamma, contrast, brightness);
6. foreign objects: bright rectangles, ellipses and polygons (after the jitter).

Coordinates are pixels, ``x`` = column and ``y`` = row, pixel centres on integers. A frontal
view shows the patient's RIGHT lung on the image's LEFT. All randomness comes from the
``numpy.random.Generator`` passed in, so a seed fixes the picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

# Grey levels of the picture before the exposure jitter.
BACKGROUND = 0.05
SOFT_TISSUE = 0.50
LUNG = 0.16
MEDIASTINUM = 0.58
HEART = 0.63
SPINE = 0.62
FLUID = 0.56  # effusion, consolidation, pneumonia
PNEUMOTHORAX = 0.07

FINDINGS = ("cardiomegaly", "effusion", "atelectasis", "consolidation", "edema", "pneumonia", "covid", "pneumothorax")
OBJECT_RECTANGLE, OBJECT_ELLIPSE, OBJECT_POLYGON = 0, 1, 2  # Object-CXR annotation types

Window = tuple[slice, slice]


# ---------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Ellipse:
    """An ellipse in pixel coordinates, rotated by ``angle`` radians (clockwise on screen)."""

    cx: float
    cy: float
    rx: float
    ry: float
    angle: float = 0.0

    def extent(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of the (rotated) ellipse."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        half_w = math.hypot(self.rx * c, self.ry * s)
        half_h = math.hypot(self.rx * s, self.ry * c)
        return self.cx - half_w, self.cy - half_h, self.cx + half_w, self.cy + half_h

    def window(self, shape: tuple[int, int], margin: float = 2.0) -> Window:
        """The rows/columns of an image of ``shape`` that the ellipse (plus margin) touches."""
        x0, y0, x1, y1 = self.extent()
        return _clip_window(shape, x0 - margin, y0 - margin, x1 + margin, y1 + margin)

    def radius_on(self, window: Window) -> np.ndarray:
        """Normalised radius of the window's pixels: < 1 inside, 1 on the outline."""
        xs, ys = _coordinates(window)
        dx, dy = xs - np.float32(self.cx), ys - np.float32(self.cy)
        if self.angle:
            c, s = np.float32(math.cos(self.angle)), np.float32(math.sin(self.angle))
            dx, dy = dx * c + dy * s, dy * c - dx * s
        return np.sqrt((dx / np.float32(self.rx)) ** 2 + (dy / np.float32(self.ry)) ** 2)

    def coverage_on(self, window: Window, soft: float = 1.5) -> np.ndarray:
        """Soft membership (0..1) of the window's pixels, the edge ``soft`` pixels wide."""
        edge = max(min(self.rx, self.ry), 1.0) / soft
        return np.clip(0.5 + (1.0 - self.radius_on(window)) * np.float32(edge), 0.0, 1.0)

    def coverage(self, shape: tuple[int, int], soft: float = 1.5) -> tuple[Window, np.ndarray]:
        window = self.window(shape, margin=soft + 1.0)
        return window, self.coverage_on(window, soft)

    def grown(self, pixels: float) -> "Ellipse":
        """The same ellipse, ``pixels`` larger on every side."""
        return Ellipse(self.cx, self.cy, self.rx + pixels, self.ry + pixels, self.angle)

    def to_json(self) -> dict:
        return {k: round(float(v), 2) for k, v in vars(self).items()}


def _clip_window(shape: tuple[int, int], x0: float, y0: float, x1: float, y1: float) -> Window:
    height, width = shape
    c0, c1 = max(0, math.floor(x0)), min(width, math.ceil(x1) + 1)
    r0, r1 = max(0, math.floor(y0)), min(height, math.ceil(y1) + 1)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _union_window(windows: Iterable[Window]) -> Window:
    windows = list(windows)
    rows = slice(min(w[0].start for w in windows), max(w[0].stop for w in windows))
    cols = slice(min(w[1].start for w in windows), max(w[1].stop for w in windows))
    return rows, cols


def _coordinates(window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Column (1, w) and row (h, 1) coordinate arrays of a window, broadcastable."""
    rows, cols = window
    xs = np.arange(cols.start, cols.stop, dtype=np.float32)[None, :]
    ys = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
    return xs, ys


def _blend(image: np.ndarray, window: Window, weight: np.ndarray, value: float) -> None:
    """Move the window's pixels towards ``value`` by ``weight`` (0 = keep, 1 = replace)."""
    region = image[window]
    region += (np.float32(value) - region) * weight


def _weight_box(window: Window, weight: np.ndarray, threshold: float = 0.3) -> tuple[int, int, int, int] | None:
    """``(x, y, width, height)`` of the pixels whose weight exceeds ``threshold``."""
    rows = np.flatnonzero((weight > threshold).any(axis=1))
    cols = np.flatnonzero((weight > threshold).any(axis=0))
    if rows.size == 0:
        return None
    x, y = window[1].start + int(cols[0]), window[0].start + int(rows[0])
    return x, y, int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


# ---------------------------------------------------------------------------- anatomy
@dataclass(frozen=True)
class LungField:
    """A lung field; ``outward`` is +1 when its lateral (outer) edge is on the image right."""

    shape: Ellipse
    outward: int
    side: str  # patient side: "right" / "left"; "both" for the single field of a lateral view

    def to_json(self) -> dict:
        return {"side": self.side, "outward": self.outward, **self.shape.to_json()}


@dataclass(frozen=True)
class Anatomy:
    """Where the drawn structures are (pixels); stored in the demo truth files."""

    size: int
    view: str  # "frontal" or "lateral"
    body: Ellipse
    lungs: tuple[LungField, ...]
    heart: Ellipse
    normal_heart_rx: float  # the heart's half-width before any cardiomegaly
    column: Ellipse  # mediastinum (frontal) or spine (lateral)

    def to_json(self) -> dict:
        return {
            "size": self.size,
            "view": self.view,
            "lungs": [lung.to_json() for lung in self.lungs],
            "heart": self.heart.to_json(),
            "normal_heart_rx": round(self.normal_heart_rx, 2),
        }


def sample_anatomy(
    rng: np.random.Generator, size: int, view: str = "frontal", heart_enlargement: float = 1.0
) -> Anatomy:
    """Random patient anatomy with position/size jitter (``heart_enlargement`` > 1: cardiomegaly)."""
    zoom = rng.uniform(0.92, 1.04)
    shift_x, shift_y = rng.uniform(-0.03, 0.03, size=2)

    def ellipse(u: float, v: float, ru: float, rv: float, angle: float = 0.0) -> Ellipse:
        cx = (0.5 + (u - 0.5) * zoom + shift_x) * size
        cy = (0.5 + (v - 0.5) * zoom + shift_y) * size
        return Ellipse(cx, cy, ru * zoom * size, rv * zoom * size, angle)

    if view == "frontal":
        body = ellipse(0.5, 0.60, rng.uniform(0.42, 0.47), 0.56)
        offset, lung_v = rng.uniform(0.17, 0.20), rng.uniform(0.45, 0.48)
        lungs = tuple(
            LungField(
                ellipse(
                    0.5 + outward * offset,
                    lung_v,
                    rng.uniform(0.13, 0.15),
                    rng.uniform(0.28, 0.31),
                    -outward * rng.uniform(0.0, 0.08),
                ),
                outward,
                side,
            )
            for outward, side in ((-1, "right"), (+1, "left"))
        )
        column = ellipse(0.5, 0.42, rng.uniform(0.05, 0.06), 0.28)
        heart_u, heart_v, heart_rv = 0.53, 0.645, rng.uniform(0.11, 0.13)
    elif view == "lateral":
        body = ellipse(0.5, 0.57, rng.uniform(0.40, 0.44), 0.55)
        lungs = (LungField(ellipse(0.53, 0.46, rng.uniform(0.25, 0.28), rng.uniform(0.29, 0.32)), +1, "both"),)
        column = ellipse(0.80, 0.58, 0.05, 0.44, 0.05)
        heart_u, heart_v, heart_rv = 0.37, 0.63, rng.uniform(0.13, 0.15)
    else:
        raise ValueError(f"unknown view {view!r}")
    normal_rx = rng.uniform(0.12, 0.14)
    enlargement_shift = 0.04 * (heart_enlargement - 1.0) * (1 if view == "frontal" else -1)
    heart = ellipse(
        heart_u + enlargement_shift,
        heart_v,
        normal_rx * heart_enlargement,
        heart_rv * (1 + 0.25 * (heart_enlargement - 1)),
    )
    return Anatomy(size, view, body, lungs, heart, normal_rx * zoom * size, column)


def _draw_ribs(image: np.ndarray, window: Window, weight: np.ndarray, anatomy: Anatomy, phase: float) -> None:
    """Faint curved rib shadows across a lung field."""
    xs, ys = _coordinates(window)
    period = anatomy.size * 0.085
    curve = (xs - anatomy.size / 2) ** 2 / (anatomy.size * 1.6)
    ribs = 0.5 + 0.5 * np.cos((ys - curve) * np.float32(2 * math.pi / period) + np.float32(phase))
    image[window] += np.float32(0.05) * ribs**3 * weight


def draw_anatomy(rng: np.random.Generator, anatomy: Anatomy) -> np.ndarray:
    """The unexposed picture of ``anatomy`` as a float32 array."""
    shape = (anatomy.size, anatomy.size)
    image = np.full(shape, BACKGROUND, dtype=np.float32)
    window, weight = anatomy.body.coverage(shape, soft=3.0)
    _blend(image, window, weight, SOFT_TISSUE)
    phase = rng.uniform(0, 2 * math.pi)
    for lung in anatomy.lungs:
        window, weight = lung.shape.coverage(shape, soft=3.0)
        _blend(image, window, weight * np.float32(0.92), LUNG)
        _draw_ribs(image, window, weight, anatomy, phase)
    column_value = MEDIASTINUM if anatomy.view == "frontal" else SPINE
    window, weight = anatomy.column.coverage(shape, soft=2.5)
    _blend(image, window, weight, column_value)
    window, weight = anatomy.heart.coverage(shape, soft=2.0)
    _blend(image, window, weight * np.float32(0.95), HEART)
    return image


# ---------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Finding:
    """A finding to draw: ``severity`` 1 = clearly visible, ~0.4 = faint (an uncertain label).

    ``extent``: how many lungs (effusion, pneumothorax) or opacities (pneumonia) it involves.
    """

    name: str
    severity: float = 1.0
    extent: int = 1

    def __post_init__(self) -> None:
        if self.name not in FINDINGS:
            raise ValueError(f"unknown finding {self.name!r}; known: {FINDINGS}")


def _pick_lungs(rng: np.random.Generator, anatomy: Anatomy, count: int) -> list[LungField]:
    if count >= len(anatomy.lungs):
        return list(anatomy.lungs)
    order = rng.permutation(len(anatomy.lungs))[:count]
    return [anatomy.lungs[i] for i in sorted(order)]


def _point_in_lung(rng: np.random.Generator, lung: LungField, radius: float, lower_bias: float) -> tuple[float, float]:
    """A random point inside ``radius`` (normalised) of the lung, biased towards its base."""
    e = lung.shape
    r, theta = radius * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
    return e.cx + r * e.rx * math.cos(theta), e.cy + e.ry * (r * math.sin(theta) + lower_bias)


def draw_effusion(image, anatomy, rng, finding) -> dict:
    """A bright fluid layer filling the lung base, its meniscus rising along the lateral wall."""
    sides = []
    for lung in _pick_lungs(rng, anatomy, finding.extent):
        e = lung.shape
        window, cover = e.grown(1.5).coverage(image.shape, soft=2.0)  # also covers the lung's soft rim
        xs, ys = _coordinates(window)
        depth = (0.07 + 0.24 * finding.severity) * rng.uniform(0.85, 1.15)  # share of the lung height
        level = e.cy + e.ry - 1.6 * e.ry * depth  # fluid surface at the medial edge
        lateral = np.clip((xs - np.float32(e.cx - lung.outward * e.rx)) * np.float32(lung.outward / (2 * e.rx)), 0, 1)
        surface = np.float32(level) - np.float32(1.6 * e.ry * depth) * lateral**2
        fluid = np.float32(0.5) + np.float32(0.5) * np.tanh((ys - surface) / np.float32(3.0))  # logistic, 1.5 px
        _blend(image, window, fluid * cover * np.float32(0.55 + 0.4 * finding.severity), FLUID)
        sides.append({"side": lung.side, "level_y": round(level, 1)})
    return {"lungs": sides}


def draw_atelectasis(image, anatomy, rng, finding) -> dict:
    """A thin bright band (plate-like atelectasis) across a lower lung."""
    lung = _pick_lungs(rng, anatomy, 1)[0]
    e = lung.shape
    cx = e.cx + lung.outward * e.rx * rng.uniform(-0.25, 0.35)
    cy = e.cy + e.ry * rng.uniform(0.25, 0.55)
    band = Ellipse(
        cx, cy, e.rx * rng.uniform(0.45, 0.75), max(1.2, e.ry * rng.uniform(0.04, 0.07)), rng.uniform(-0.35, 0.35)
    )
    window, weight = band.coverage(image.shape, soft=1.0)
    weight = weight * e.coverage_on(window, soft=2.0)
    _blend(image, window, weight * np.float32(0.35 + 0.5 * finding.severity), FLUID)
    return {"side": lung.side, "band": band.to_json()}


def _focal_opacity(
    image, rng, lung: LungField, strength: float, radius: tuple[float, float]
) -> tuple[int, int, int, int] | None:
    """Two or three overlapping blobs inside a lung; returns the opacity's box (x, y, w, h)."""
    e = lung.shape
    cx, cy = _point_in_lung(rng, lung, 0.5, lower_bias=0.12)
    base = e.rx * rng.uniform(*radius)
    blobs = [
        Ellipse(
            cx + rng.normal(0, 0.35) * base,
            cy + rng.normal(0, 0.35) * base,
            base * rng.uniform(0.7, 1.2),
            base * rng.uniform(0.7, 1.3),
            rng.uniform(0, math.pi),
        )
        for _ in range(int(rng.integers(2, 4)))
    ]
    window = _union_window(b.window(image.shape, margin=3.0) for b in blobs)
    weight = np.maximum.reduce([b.coverage_on(window, soft=2.5) for b in blobs])
    weight = weight * e.coverage_on(window, soft=2.0) * np.float32(strength)
    _blend(image, window, weight, FLUID + 0.06)
    return _weight_box(window, weight, threshold=0.3 * strength)


def draw_consolidation(image, anatomy, rng, finding) -> dict:
    """A dense bright patch inside one lung."""
    lung = _pick_lungs(rng, anatomy, 1)[0]
    box = _focal_opacity(image, rng, lung, 0.45 + 0.45 * finding.severity, (0.28, 0.42))
    return {"side": lung.side, "box": box}


def draw_pneumonia(image, anatomy, rng, finding) -> dict:
    """One opaque blob per involved lung region (two: one in each lung); boxes of each."""
    opacities = []
    lungs = _pick_lungs(rng, anatomy, finding.extent)
    while len(lungs) < finding.extent:  # more opacities than lungs: repeat lungs
        lungs.append(anatomy.lungs[int(rng.integers(len(anatomy.lungs)))])
    for lung in lungs:
        box = _focal_opacity(image, rng, lung, 0.55 + 0.38 * finding.severity, (0.38, 0.58))
        if box is not None:
            opacities.append({"side": lung.side, "box": box})
    return {"opacities": opacities}


def draw_edema(image, anatomy, rng, finding) -> dict:
    """Bilateral hazy perihilar brightening (bat-wing pattern)."""
    amplitude = np.float32((0.07 + 0.15 * finding.severity) * rng.uniform(0.9, 1.1))
    for lung in anatomy.lungs:
        e = lung.shape
        window, cover = e.coverage(image.shape, soft=2.0)
        xs, ys = _coordinates(window)
        hilum_x, hilum_y = e.cx - lung.outward * 0.45 * e.rx, e.cy - 0.05 * e.ry
        haze = np.exp(-0.5 * (((xs - hilum_x) / (0.6 * e.rx)) ** 2 + ((ys - hilum_y) / (0.45 * e.ry)) ** 2))
        image[window] += amplitude * haze * cover
    return {"amplitude": round(float(amplitude), 3)}


def draw_covid(image, anatomy, rng, finding) -> dict:
    """Bilateral, peripheral, lower-zone ground-glass patches (hazy and granular, not focal)."""
    amplitude = (0.06 + 0.11 * finding.severity) * rng.uniform(0.9, 1.1)
    patches = []
    for lung in anatomy.lungs:
        e = lung.shape
        window, cover = e.coverage(image.shape, soft=2.0)
        xs, ys = _coordinates(window)
        haze = np.zeros(cover.shape, dtype=np.float32)
        for _ in range(int(rng.integers(2, 4))):
            px = e.cx + lung.outward * e.rx * rng.uniform(0.4, 0.75)
            py = e.cy + e.ry * rng.uniform(-0.3, 0.65)
            sigma = e.rx * rng.uniform(0.25, 0.4)
            haze += np.exp(-0.5 * (((xs - px) ** 2 + (ys - py) ** 2) / sigma**2))
            patches.append({"side": lung.side, "x": round(px, 1), "y": round(py, 1), "sigma": round(sigma, 1)})
        grain = rng.uniform(0.6, 1.4, size=cover.shape).astype(np.float32)
        image[window] += np.float32(amplitude) * np.minimum(haze, 1.3) * grain * cover
    return {"patches": patches}


def draw_pneumothorax(image, anatomy, rng, finding) -> dict:
    """A flat, very dark, texture-free crescent along the lateral edge and apex of a lung.

    The lung collapses towards the hilum and base (a smaller ellipse anchored at the lung's
    medial-basal side) behind a thin bright visceral pleural line. Returns one exact mask per
    involved lung (``masks``); the drawn dark region equals their union.
    """
    dark = PNEUMOTHORAX + rng.uniform(-0.01, 0.02)
    masks, components = [], []
    for lung in _pick_lungs(rng, anatomy, finding.extent):
        e = lung.shape
        shrink_x = rng.uniform(0.62, 0.84) if finding.severity >= 0.7 else rng.uniform(0.84, 0.9)
        rx, ry = e.rx * shrink_x, e.ry * rng.uniform(0.80, 0.92)
        collapsed = Ellipse(e.cx - lung.outward * (e.rx - rx), e.cy + (e.ry - ry), rx, ry, e.angle)
        window = e.window(image.shape, margin=1.0)
        xs, ys = _coordinates(window)
        towards_wall = ((xs - np.float32(collapsed.cx)) * lung.outward >= 0) | (ys <= np.float32(collapsed.cy))
        collapsed_r = collapsed.radius_on(window)
        region = (e.radius_on(window) <= 1) & (collapsed_r > 1) & towards_wall & (anatomy.heart.radius_on(window) > 1)
        pleural_line = (collapsed_r <= 1) & (collapsed_r > 1 - 1.3 / min(rx, ry)) & towards_wall
        image[window] += np.float32(0.12) * pleural_line
        image[window][region] = np.float32(dark)
        mask = np.zeros(image.shape, dtype=bool)
        mask[window] = region
        masks.append(mask)
        components.append({"side": lung.side, "collapsed_lung": collapsed.to_json(), "pixels": int(region.sum())})
    return {"masks": masks, "components": components}


DRAW_FINDING = {
    "effusion": draw_effusion,
    "atelectasis": draw_atelectasis,
    "consolidation": draw_consolidation,
    "pneumonia": draw_pneumonia,
    "edema": draw_edema,
    "covid": draw_covid,
}


# ---------------------------------------------------------------------------- noise, exposure
def smooth_noise(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """Unit-variance-ish noise varying over about ``cell`` pixels."""
    coarse = max(2, size // cell + 2)
    low = Image.fromarray(rng.standard_normal((coarse, coarse)).astype(np.float32), mode="F")
    return np.asarray(low.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)


def add_texture(image: np.ndarray, rng: np.random.Generator) -> None:
    size = image.shape[0]
    image += np.float32(0.035) * smooth_noise(rng, size, max(6, size // 12))
    image += np.float32(0.02) * smooth_noise(rng, size, max(3, size // 40))
    image += np.float32(0.010) * rng.standard_normal(image.shape, dtype=np.float32)


def expose(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Global exposure jitter: gamma, contrast and brightness."""
    gamma, contrast, brightness = rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15), rng.uniform(-0.05, 0.05)
    np.clip(image, 0.0, 1.0, out=image)
    image **= np.float32(gamma)
    return (image - np.float32(0.4)) * np.float32(contrast) + np.float32(0.4 + brightness)


# ---------------------------------------------------------------------------- foreign objects
@dataclass(frozen=True)
class ForeignObject:
    """An Object-CXR annotation: type 0 rectangle / 1 ellipse (x1 y1 x2 y2), 2 polygon (x y ...)."""

    kind: int
    points: tuple[int, ...]

    def annotation(self) -> str:
        return " ".join(str(v) for v in (self.kind, *self.points))

    def box(self) -> tuple[int, int, int, int]:
        xs, ys = self.points[0::2], self.points[1::2]
        return min(xs), min(ys), max(xs), max(ys)


def _wire_polygon(rng: np.random.Generator, size: int) -> list[tuple[float, float]]:
    """A thin curved band (lead wire) as a closed polygon."""
    x, y = rng.uniform(0.15, 0.85, size=2) * size
    heading, step = rng.uniform(0, 2 * math.pi), size * rng.uniform(0.05, 0.09)
    half = max(1.5, size * 0.012)
    centre = [(x, y)]
    for _ in range(int(rng.integers(3, 6))):
        heading += rng.uniform(-0.5, 0.5)
        x = float(np.clip(x + step * math.cos(heading), 2, size - 3))
        y = float(np.clip(y + step * math.sin(heading), 2, size - 3))
        centre.append((x, y))
    left, right = [], []
    for i, (px, py) in enumerate(centre):
        qx, qy = centre[min(i + 1, len(centre) - 1)]
        ox, oy = centre[max(i - 1, 0)]
        dx, dy = qx - ox, qy - oy
        norm = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / norm * half, dx / norm * half
        left.append((px + nx, py + ny))
        right.append((px - nx, py - ny))
    return left + right[::-1]


def _clip_polygon(rng: np.random.Generator, size: int) -> list[tuple[float, float]]:
    """A small star-shaped polygon (clip, coin-like button, jewellery)."""
    cx, cy = rng.uniform(0.1, 0.9, size=2) * size
    radius = size * rng.uniform(0.04, 0.08)
    count = int(rng.integers(5, 8))
    angles = np.sort(rng.uniform(0, 2 * math.pi, count))
    return [
        (cx + radius * rng.uniform(0.5, 1.0) * math.cos(a), cy + radius * rng.uniform(0.5, 1.0) * math.sin(a))
        for a in angles
    ]


def sample_foreign_object(rng: np.random.Generator, size: int, kind: int) -> ForeignObject:
    limit = size - 1

    def clip(v: float) -> int:
        return int(min(max(round(v), 0), limit))

    if kind in (OBJECT_RECTANGLE, OBJECT_ELLIPSE):
        cx, cy = rng.uniform(0.08, 0.92, size=2) * size
        if kind == OBJECT_RECTANGLE:
            half_w, half_h = size * rng.uniform(0.03, 0.07), size * rng.uniform(0.025, 0.06)
        else:
            half_w = size * rng.uniform(0.025, 0.05)
            half_h = half_w * rng.uniform(0.8, 1.25)
        return ForeignObject(kind, (clip(cx - half_w), clip(cy - half_h), clip(cx + half_w), clip(cy + half_h)))
    outline = _wire_polygon(rng, size) if rng.uniform() < 0.5 else _clip_polygon(rng, size)
    points: list[tuple[int, int]] = []
    for x, y in outline:  # integer vertices, without repeats
        vertex = (clip(x), clip(y))
        if not points or vertex != points[-1]:
            points.append(vertex)
    if len(set(points)) < 3:  # degenerate after rounding: fall back to a triangle
        x, y = points[0]
        dx, dy = (4 if x < size // 2 else -4), (4 if y < size // 2 else -4)
        points = [(x, y), (x + dx, y), (x, y + dy)]
    return ForeignObject(OBJECT_POLYGON, tuple(v for point in points for v in point))


def draw_foreign_objects(image: np.ndarray, rng: np.random.Generator, kinds: Sequence[int]) -> list[ForeignObject]:
    """Bright (radio-opaque) objects of the given Object-CXR types, anywhere on the image."""
    size = image.shape[0]
    objects = []
    for kind in kinds:
        obj = sample_foreign_object(rng, size, kind)
        stencil = Image.new("L", (image.shape[1], image.shape[0]), 0)
        draw = ImageDraw.Draw(stencil)
        if kind == OBJECT_RECTANGLE:
            draw.rectangle(obj.points, fill=255)
        elif kind == OBJECT_ELLIPSE:
            draw.ellipse(obj.points, fill=255)
        else:
            draw.polygon(list(zip(obj.points[0::2], obj.points[1::2])), fill=255)
        x0, y0, x1, y1 = obj.box()
        window = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        weight = np.asarray(stencil, dtype=np.float32)[window] / np.float32(255)
        _blend(image, window, weight, rng.uniform(0.9, 1.0))
        objects.append(obj)
    return objects


# ---------------------------------------------------------------------------- the whole picture
@dataclass
class Radiograph:
    """A drawn picture: 8-bit pixels plus what was drawn where."""

    pixels: np.ndarray  # (size, size) uint8
    anatomy: Anatomy
    drawn: dict[str, dict] = field(default_factory=dict)  # finding -> its geometry
    pneumothorax_masks: list[np.ndarray] = field(default_factory=list)
    objects: list[ForeignObject] = field(default_factory=list)

    def opacity_boxes(self) -> list[tuple[int, int, int, int]]:
        """Boxes ``(x, y, width, height)`` of the drawn pneumonia opacities."""
        return [o["box"] for o in self.drawn.get("pneumonia", {}).get("opacities", [])]

    def findings_json(self) -> dict:
        """What was drawn, JSON-ready (the masks are left out)."""
        out = {}
        for name, geometry in self.drawn.items():
            out[name] = {k: v for k, v in geometry.items() if k != "masks"}
        return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)


def draw_radiograph(
    rng: np.random.Generator,
    size: int,
    findings: Sequence[Finding] = (),
    *,
    view: str = "frontal",
    object_kinds: Sequence[int] = (),
) -> Radiograph:
    """Draw one radiograph of ``size`` x ``size`` pixels showing ``findings`` and foreign objects."""
    by_name = {f.name: f for f in findings}
    cardiomegaly = by_name.get("cardiomegaly")
    enlargement = 1.0 + (0.15 + 0.45 * cardiomegaly.severity) * rng.uniform(0.9, 1.1) if cardiomegaly else 1.0
    anatomy = sample_anatomy(rng, size, view, enlargement)
    image = draw_anatomy(rng, anatomy)
    drawn: dict[str, dict] = {}
    if cardiomegaly:
        drawn["cardiomegaly"] = {"heart_rx": round(anatomy.heart.rx, 1), "enlargement": round(enlargement, 3)}
    for finding in findings:
        if finding.name in DRAW_FINDING:
            drawn[finding.name] = DRAW_FINDING[finding.name](image, anatomy, rng, finding)
    add_texture(image, rng)
    masks: list[np.ndarray] = []
    if "pneumothorax" in by_name:
        drawn["pneumothorax"] = draw_pneumothorax(image, anatomy, rng, by_name["pneumothorax"])
        masks = drawn["pneumothorax"]["masks"]
    image = expose(image, rng)
    objects = draw_foreign_objects(image, rng, object_kinds)
    return Radiograph(to_uint8(image), anatomy, drawn, masks, objects)
