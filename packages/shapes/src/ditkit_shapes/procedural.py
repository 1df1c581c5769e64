"""The embedded default dataset: procedural shapes built from primitives, sampled on their surfaces.

Every shape is a union of primitives (boxes, cylinders, frusta, ellipsoids, tori) whose proportions are drawn at
random, followed by a random global deformation (anisotropic scale, taper, bend). Points are sampled uniformly
on the union's surface (each primitive gets points in proportion to its area; ellipsoids are sampled by scaling
sphere directions, which is only approximately area-uniform). Coordinates are y-up, roughly within [-1, 1]^3,
and not normalised (the loader normalises, see :mod:`ditkit_shapes.data`).

The dataset is written in the ShapeNet / PointFlow ``PC15k`` layout ``root/<class>/<split>/<index>.npy`` (one
``[points, 3]`` float32 array per file), so the same loader reads it and real data. Splits and shapes are fixed by
``seed``: shape ``i`` of class ``c`` in split ``s`` comes from its own generator seeded by ``(seed, c, s, i)``.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ditkit_core.errors import atomic_save, atomic_write

CLASSES = ("airplane", "car", "chair", "lamp", "mug", "table")
SPLITS = ("train", "val", "test")


@dataclass
class Primitive:
    """A surface patch: ``area`` and a sampler ``sample(rng, n) -> [n, 3]``."""

    area: float
    sample: Callable[[np.random.Generator, int], np.ndarray]


def box(center, size, faces: str = "xyzXYZ") -> Primitive:
    """Axis-aligned box surface; ``faces`` lists the faces kept (lower case = min side, upper = max side)."""
    c, s = np.asarray(center, float), np.asarray(size, float)
    face_list = [("xyz".index(f.lower()), f.isupper()) for f in faces]
    areas = np.array([s[(a + 1) % 3] * s[(a + 2) % 3] for a, _ in face_list])

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        which = rng.choice(len(face_list), size=n, p=areas / areas.sum())
        p = rng.uniform(-0.5, 0.5, size=(n, 3))
        for i, (axis, upper) in enumerate(face_list):
            p[which == i, axis] = 0.5 if upper else -0.5
        return c + p * s

    return Primitive(float(areas.sum()), sample)


def _frame(axis: int) -> tuple[int, int, int]:
    return (axis, (axis + 1) % 3, (axis + 2) % 3)


def frustum(center, r0: float, r1: float, height: float, axis: int = 1, caps: bool = True) -> Primitive:
    """Lateral surface of a cone frustum (a cylinder when ``r0 == r1``) along ``axis``, optional flat caps."""
    c = np.asarray(center, float)
    slant = math.hypot(height, r1 - r0)
    lateral = math.pi * (r0 + r1) * slant
    cap_areas = [math.pi * r0**2, math.pi * r1**2] if caps else [0.0, 0.0]
    parts = np.array([lateral, *cap_areas])
    ax, u, v = _frame(axis)

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        which = rng.choice(3, size=n, p=parts / parts.sum())
        out = np.zeros((n, 3))
        theta = rng.uniform(0, 2 * math.pi, n)
        # lateral: radius linear in h; density proportional to radius -> inverse-CDF on r^2
        h = rng.uniform(0, 1, n)
        if abs(r1 - r0) > 1e-9:
            h = (np.sqrt(r0**2 + h * (r1**2 - r0**2)) - r0) / (r1 - r0)
        r = r0 + (r1 - r0) * h
        y = (h - 0.5) * height
        for k, (hh, rr) in ((1, (-0.5 * height, r0)), (2, (0.5 * height, r1))):
            sel = which == k
            r[sel] = rr * np.sqrt(rng.uniform(0, 1, sel.sum()))
            y[sel] = hh
        out[:, ax], out[:, u], out[:, v] = y, r * np.cos(theta), r * np.sin(theta)
        return c + out

    return Primitive(float(parts.sum()), sample)


def ellipsoid(center, radii) -> Primitive:
    """Ellipsoid surface (scaled sphere directions; area from the Knud Thomsen approximation)."""
    c, r = np.asarray(center, float), np.asarray(radii, float)
    p = 1.6075
    a, b, cc = r
    area = 4 * math.pi * (((a * b) ** p + (a * cc) ** p + (b * cc) ** p) / 3) ** (1 / p)

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True).clip(1e-12)
        return c + d * r

    return Primitive(area, sample)


def torus(
    center, big_r: float, small_r: float, axis: int = 1, arc: float = 2 * math.pi, arc_start: float = 0.0
) -> Primitive:
    """Torus surface around ``axis`` (a partial torus when ``arc < 2 pi``), area-uniform by rejection."""
    c = np.asarray(center, float)
    area = arc * small_r * 2 * math.pi * big_r
    ax, u, v = _frame(axis)

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        out = np.zeros((0, 3))
        while len(out) < n:
            m = 2 * (n - len(out)) + 8
            a = arc_start + rng.uniform(0, arc, m)
            b = rng.uniform(0, 2 * math.pi, m)
            keep = rng.uniform(0, big_r + small_r, m) < big_r + small_r * np.cos(b)  # density ~ R + r cos(b)
            a, b = a[keep], b[keep]
            rr = big_r + small_r * np.cos(b)
            p = np.zeros((len(a), 3))
            p[:, u], p[:, v], p[:, ax] = rr * np.cos(a), rr * np.sin(a), small_r * np.sin(b)
            out = np.concatenate([out, p])
        return c + out[:n]

    return Primitive(area, sample)


# ---------------------------------------------------------------------------------------------- classes
def _chair(rng: np.random.Generator) -> list[Primitive]:
    w, d = rng.uniform(0.7, 1.1), rng.uniform(0.7, 1.0)
    seat_h, th = rng.uniform(0.6, 0.9), rng.uniform(0.06, 0.12)
    back_h, leg = rng.uniform(0.6, 1.1), rng.uniform(0.05, 0.09)
    parts = [box([0, seat_h, 0], [w, th, d]), box([0, seat_h + back_h / 2, -d / 2 + th / 2], [w, back_h, th])]
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(box([sx * (w / 2 - leg), seat_h / 2, sz * (d / 2 - leg)], [leg, seat_h, leg], "xzXZ"))
    if rng.uniform() < 0.5:  # armrests
        for sx in (-1, 1):
            parts.append(box([sx * w / 2, seat_h + 0.25, 0], [th, th, d * 0.9]))
    return parts


def _table(rng: np.random.Generator) -> list[Primitive]:
    w, d, h = rng.uniform(1.2, 2.0), rng.uniform(0.7, 1.2), rng.uniform(0.6, 0.9)
    th = rng.uniform(0.05, 0.1)
    parts = [box([0, h, 0], [w, th, d])]
    if rng.uniform() < 0.3:  # pedestal table
        parts += [frustum([0, h / 2, 0], 0.08, 0.08, h, caps=False), frustum([0, 0.02, 0], 0.4, 0.4, 0.04)]
    else:
        leg = rng.uniform(0.05, 0.1)
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(box([sx * (w / 2 - leg), h / 2, sz * (d / 2 - leg)], [leg, h, leg], "xzXZ"))
    return parts


def _lamp(rng: np.random.Generator) -> list[Primitive]:
    h = rng.uniform(1.0, 1.8)
    base_r, shade_h = rng.uniform(0.25, 0.4), rng.uniform(0.3, 0.5)
    r_top, r_bot = rng.uniform(0.12, 0.22), rng.uniform(0.3, 0.45)
    return [
        frustum([0, 0.03, 0], base_r, base_r * 0.9, 0.06),
        frustum([0, h / 2, 0], 0.03, 0.03, h, caps=False),
        frustum([0, h, 0], r_bot, r_top, shade_h, caps=False),
    ]


def _mug(rng: np.random.Generator) -> list[Primitive]:
    r, h = rng.uniform(0.35, 0.5), rng.uniform(0.7, 1.1)
    handle = torus(
        [r + 0.12, h / 2, 0],
        rng.uniform(0.18, 0.25),
        rng.uniform(0.03, 0.05),
        axis=2,
        arc=math.pi * 1.2,
        arc_start=-math.pi * 0.6,
    )
    return [
        frustum([0, h / 2, 0], r, r * rng.uniform(1.0, 1.15), h, caps=False),
        frustum([0, 0.0, 0], r, r, 1e-3, caps=True),
        handle,
    ]


def _airplane(rng: np.random.Generator) -> list[Primitive]:
    length, rad = rng.uniform(1.6, 2.2), rng.uniform(0.1, 0.16)
    span, chord = rng.uniform(1.6, 2.4), rng.uniform(0.3, 0.5)
    wing_z = rng.uniform(-0.1, 0.15)
    tail_span = rng.uniform(0.5, 0.8)
    return [
        ellipsoid([0, 0, 0], [rad, rad, length / 2]),
        box([0, 0, wing_z], [span, 0.03, chord]),
        box([0, 0.02, -length / 2 + 0.15], [tail_span, 0.02, 0.2]),
        box([0, rad + 0.12, -length / 2 + 0.15], [0.02, 0.3, 0.22]),
    ]


def _car(rng: np.random.Generator) -> list[Primitive]:
    length, width, body_h = rng.uniform(1.6, 2.2), rng.uniform(0.7, 0.9), rng.uniform(0.3, 0.45)
    wheel_r = rng.uniform(0.14, 0.2)
    cab_l, cab_h = length * rng.uniform(0.4, 0.6), rng.uniform(0.25, 0.35)
    parts = [
        box([0, wheel_r + body_h / 2, 0], [width, body_h, length]),
        box([0, wheel_r + body_h + cab_h / 2, -rng.uniform(0, 0.2)], [width * 0.9, cab_h, cab_l], "xyzXYZ"),
    ]
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(frustum([sx * width / 2, wheel_r, sz * length * 0.32], wheel_r, wheel_r, 0.12, axis=0))
    return parts


BUILDERS: dict[str, Callable[[np.random.Generator], list[Primitive]]] = {
    "airplane": _airplane,
    "car": _car,
    "chair": _chair,
    "lamp": _lamp,
    "mug": _mug,
    "table": _table,
}


def _deform(rng: np.random.Generator, pts: np.ndarray, strength: float) -> np.ndarray:
    """Random anisotropic scale, taper along y and a gentle bend in x (all mild, ``strength`` in [0, 1])."""
    pts = pts * (1 + strength * rng.uniform(-0.15, 0.15, size=3))
    y = pts[:, 1] - pts[:, 1].mean()
    span = max(float(np.ptp(pts[:, 1])), 1e-6)
    taper = 1 + strength * rng.uniform(-0.2, 0.2) * y / span
    pts[:, 0] *= taper
    pts[:, 2] *= taper
    pts[:, 0] += strength * rng.uniform(-0.1, 0.1) * (y / span) ** 2
    return pts


def make_shape(
    name: str, points: int = 2048, seed: int | np.random.Generator = 0, deform: float = 1.0, noise: float = 0.0
) -> np.ndarray:
    """One procedural shape of class ``name`` as ``[points, 3]`` float32 surface samples.

    Args:
        name: one of :data:`CLASSES`.
        points: number of surface points.
        seed: integer seed or a numpy generator.
        deform: strength of the random global deformation (0: none).
        noise: std of isotropic Gaussian jitter added to the points.
    """
    if name not in BUILDERS:
        raise ValueError(f"make_shape: unknown class {name!r}; choose one of {sorted(BUILDERS)}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    parts = BUILDERS[name](rng)
    areas = np.array([p.area for p in parts])
    counts = rng.multinomial(points, areas / areas.sum())
    pts = np.concatenate([p.sample(rng, int(k)) for p, k in zip(parts, counts) if k > 0])
    pts = _deform(rng, pts, deform)
    if noise > 0:
        pts = pts + rng.normal(scale=noise, size=pts.shape)
    return rng.permutation(pts).astype(np.float32)


def shape_seed(seed: int, cls: str, split: str, index: int) -> np.random.Generator:
    """The generator of shape ``index`` of class ``cls`` in ``split`` (independent of every other shape)."""
    return np.random.default_rng([seed, CLASSES.index(cls), SPLITS.index(split), index])


def write_dataset(
    root: str | Path,
    *,
    classes: tuple[str, ...] = CLASSES,
    sizes: dict[str, int] | None = None,
    points: int = 2048,
    seed: int = 0,
) -> Path:
    """Write the procedural dataset as ``root/<class>/<split>/<index>.npy`` and return ``root``.

    A new ``root`` is built in a temporary folder next to it and renamed into place at the end, so a run killed
    midway never leaves a partial dataset that a later run would take for complete. Into an existing ``root``
    every file is written atomically (temporary file + rename).

    Args:
        root: output folder (created).
        classes: classes to generate.
        sizes: shapes per class and split (default ``train 160, val 16, test 48``).
        points: points per shape.
        seed: dataset seed.
    """
    sizes = sizes or {"train": 160, "val": 16, "test": 48}
    root = Path(root)
    fresh = not root.exists()
    root.parent.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent)) if fresh else root
    try:
        for cls in classes:
            for split, n in sizes.items():
                d = target / cls / split
                d.mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    cloud = make_shape(cls, points, shape_seed(seed, cls, split, i))
                    atomic_save(d / f"{i:04d}.npy", lambda p, c=cloud: np.save(p, c))
        with atomic_write(target / "README.txt", "w") as f:
            f.write(f"ditkit-shapes procedural dataset: seed={seed} points={points} sizes={sizes}\n")
        if fresh:
            os.replace(target, root)
    except BaseException:
        if fresh:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return root


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="write the procedural shapes dataset")
    ap.add_argument("--out", default="outputs/shapes/data")
    ap.add_argument("--points", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=160)
    ap.add_argument("--val", type=int, default=16)
    ap.add_argument("--test", type=int, default=48)
    a = ap.parse_args(argv)
    root = write_dataset(a.out, sizes={"train": a.train, "val": a.val, "test": a.test}, points=a.points, seed=a.seed)
    from ditkit_shapes.data import normalize_points
    from ditkit_shapes.viz import render_grid

    clouds = [
        normalize_points(make_shape(c, a.points, shape_seed(a.seed, c, "train", i)), "unit_sphere")
        for c in CLASSES
        for i in range(2)
    ]
    png = render_grid(np.stack(clouds), root / "preview.png", titles=[c for c in CLASSES for _ in range(2)])
    print(f"wrote {len(CLASSES)} classes to {root} (preview: {png})")


if __name__ == "__main__":
    main()
