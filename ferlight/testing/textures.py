"""Procedural clutter for photo backgrounds: the kinds of surface (pebbles, coins, foliage, grain) on
which a face detector finds faces that are not there, drawn rather than taken from a package, so
that no benchmark set's background is among them.

- ``dead-leaves``: overlapping discs of random grey, a little tinted, their radii drawn from a power law (the
  "dead leaves" model of natural images' statistics; Lee, Mumford and Huang, IJCV 2001);
- ``pebbles``: the same, each disc shaded from one side to the other as a lit round object is, so
  that pairs of dark and bright spots appear as they do on gravel and coins;
- ``pink-noise``: grey noise, a little tinted, with a 1/f amplitude spectrum, as natural images have.

Deterministic: each name gives the same BGR image every time.
"""

from __future__ import annotations

import zlib

import numpy as np

TEXTURES = ("dead-leaves", "pebbles", "pink-noise")
SIZE = (1024, 768)  # width, height
RADII = (4.0, 120.0)  # px, smallest and largest disc
DISCS = 10000


def texture(name: str, size: tuple[int, int] = SIZE) -> np.ndarray:
    """The texture ``name`` (one of :data:`TEXTURES`) as a BGR uint8 image of ``size``."""
    if name not in TEXTURES:
        raise ValueError(f"unknown texture {name!r}; choose from {', '.join(TEXTURES)}")
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name == "pink-noise":
        return _pink_noise(size, rng)
    return _dead_leaves(size, rng, shaded=name == "pebbles")


def _dead_leaves(size: tuple[int, int], rng: np.random.Generator, shaded: bool) -> np.ndarray:
    """Discs dropped one on another (the later on top), radii with density ~ 1/r^3 in :data:`RADII`."""
    width, height = size
    image = np.full((height, width, 3), 128.0, np.float32)
    low, high = RADII
    # Inverse transform of a density proportional to r^-3 between low and high.
    radii = 1 / np.sqrt(low**-2 - rng.random(DISCS) * (low**-2 - high**-2))
    for r in radii:
        cx, cy = rng.uniform(-r, width + r), rng.uniform(-r, height + r)
        left, right = int(max(cx - r, 0)), int(min(cx + r + 1, width))
        top, bottom = int(max(cy - r, 0)), int(min(cy + r + 1, height))
        if right <= left or bottom <= top:
            continue
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
        dx, dy = xs - cx, ys - cy
        inside = dx * dx + dy * dy <= r * r
        colour = (rng.uniform(20, 235) + rng.normal(0, 18, 3)).astype(np.float32)  # a grey, a little tinted
        if shaded:
            angle = rng.uniform(0, 2 * np.pi)
            light = 1 + 0.6 * (dx * np.cos(angle) + dy * np.sin(angle)) / r
            patch = colour * light[..., None]
        else:
            patch = np.broadcast_to(colour, (*inside.shape, 3))
        region = image[top:bottom, left:right]
        region[inside] = patch[inside]
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _pink_noise(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Grey noise filtered to a 1/f amplitude spectrum, a weaker such noise added to each colour
    channel (a little tint), stretched to 0-255."""
    width, height = size
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0

    def noise() -> np.ndarray:
        spectrum = np.fft.rfft2(rng.standard_normal((height, width))) / f
        spectrum[0, 0] = 0
        return np.fft.irfft2(spectrum, s=(height, width))

    grey = noise()
    image = np.stack([grey + 0.3 * noise() for _ in range(3)], -1)
    low, high = np.percentile(image, (1, 99))
    return np.clip((image - low) / (high - low) * 255, 0, 255).astype(np.uint8)
