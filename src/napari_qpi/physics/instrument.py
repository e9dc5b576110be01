"""A simulated map seen through a real STM: the artefacts white-noise simulations lack.

:func:`through_instrument` takes the physics of :func:`~.simulation.simulate` and applies,
in the order an instrument does, any of:

- ``oversampled``: the physics (noise included) on a grid half as fine, interpolated 2×
  (cubic); the true kernel interpolated the same way. ``phase`` is the interpolation's
  convention: 0 puts each coarse pixel on a fine one (corners aligned), 0.5 between two
  (pixel areas aligned, as image resizers do), so every scatterer sits half a pixel off
  the fine grid and the true kernel is centred between pixels;
- ``lockin``: the lock-in's one-pole low-pass along the fast (x) axis, τ = 0.7–2.5 px;
  the true kernel filtered the same way;
- ``lines``: per-line offsets (a random walk plus jitter) and 1–3 glitch lines;
- ``pink``: 1/f noise, half as strong as the signal;
- ``lattice``: the atomic corrugation, 2 or 3 Bragg directions, period 2.2–4 px;
- ``drift``: shear and stretch up to 1.5 %, a slow wobble up to 1 px (always with
  ``lattice``); the true kernel undistorted;
- ``background``: a plane and a slow bowl.

It exists so the project can choose its preprocessing and sparsity rules on draws of its
own; the instrument validation set is for measuring only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["ARTEFACTS", "InstrumentMap", "through_instrument"]

ARTEFACTS = ("oversampled", "lockin", "lines", "pink", "lattice", "drift", "background")


@dataclass(frozen=True)
class InstrumentMap:
    """A map seen through the instrument, and the truth in its pixels."""

    observation: np.ndarray  # (E, H, W)
    kernel: np.ndarray  # (E, k, k), odd k
    positions: np.ndarray  # (N, 2) int
    artefacts: tuple[str, ...]


def lowpass_x(data: np.ndarray, tau: float) -> np.ndarray:
    """The lock-in's one-pole low-pass along the last axis (time constant τ px)."""
    a = float(np.exp(-1.0 / tau))
    out = np.array(data, dtype=float, copy=True)
    for n in range(1, out.shape[-1]):
        out[..., n] = a * out[..., n - 1] + (1 - a) * out[..., n]
    return out


def _double(image: np.ndarray, h: int, w: int, phase: float = 0.0) -> np.ndarray:
    """Cubic interpolation at half-pixel steps: output pixel o samples input
    (o − phase) / 2, so a scatterer at p lands on 2p + phase."""
    yy, xx = (np.mgrid[:h, :w] - phase) / 2.0
    return ndimage.map_coordinates(image, [yy, xx], order=3, mode="reflect")


def through_instrument(observation: np.ndarray, kernel: np.ndarray, positions: np.ndarray,
                       artefacts, *, rng=None, phase: float = 0.0) -> InstrumentMap:
    """Apply instrument artefacts to a simulated map (see the module notes).

    Parameters
    ----------
    observation : (E, H, W) ndarray
        The simulated map with its white noise (for ``oversampled``: simulated on half the
        final grid).
    kernel : (E, k, k) ndarray
        Its true kernel.
    positions : (N, 2) int ndarray
    artefacts : sequence of str
        Names from :data:`ARTEFACTS`.
    rng : int or Generator, optional
    phase : float
        With ``oversampled``: where a coarse pixel lands between fine ones (0: on one,
        0.5: half-way, as a pixel-area resize puts it); the positions are rounded down.

    Returns
    -------
    InstrumentMap
    """
    rng = np.random.default_rng(rng)
    arts = tuple(artefacts)
    unknown = set(arts) - set(ARTEFACTS)
    if unknown:
        raise ValueError(f"artefacts {sorted(unknown)} unknown; choose from {ARTEFACTS}")
    y = np.asarray(observation, dtype=float)
    k = np.asarray(kernel, dtype=float)
    pos = np.asarray(positions)
    if "oversampled" in arts:
        y = np.stack([_double(s, 2 * s.shape[0], 2 * s.shape[1], phase) for s in y])
        # 2k − 1 px: the centre pixel c lands on 2c + phase, beside the window's centre 2c
        k = np.stack([_double(s, 2 * s.shape[0] - 1, 2 * s.shape[1] - 1, phase) for s in k])
        pos = 2 * pos
    sig = y.std(axis=(-2, -1), keepdims=True)
    e, h, w = y.shape
    if "lockin" in arts:
        tau = rng.uniform(0.7, 2.5)
        y = lowpass_x(y, tau)
        # the kernel's centre stays the scatterer: filter it padded on the left
        pad = k.shape[-1]
        k = lowpass_x(np.pad(k, ((0, 0), (0, 0), (pad, 0))), tau)[..., pad:]
    if "pink" in arts:
        f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
        f[0, 0] = np.inf
        n = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((e, h, w))) / np.sqrt(f), s=(h, w))
        y = y + 0.5 * sig * n / n.std(axis=(-2, -1), keepdims=True)
    yy, xx = np.mgrid[:h, :w].astype(float)
    if "lattice" in arts or "drift" in arts:
        period = rng.uniform(2.2, 4.0)
        angle = rng.uniform(0, np.pi)
        dirs = int(rng.integers(2, 4))
        corr = sum(np.cos(2 * np.pi / period * (np.sin(angle + j * np.pi / dirs) * yy
                                                + np.cos(angle + j * np.pi / dirs) * xx))
                   for j in range(dirs))
        y = y + sig * corr / corr.std()
    if "drift" in arts:
        shear, stretch = rng.uniform(-0.015, 0.015, 2)
        amp, wl = rng.uniform(0.3, 1.0), rng.uniform(40, 120)
        uy = stretch * (yy - h / 2) + amp * np.sin(2 * np.pi * xx / wl)
        ux = shear * (yy - h / 2)
        y = np.stack([ndimage.map_coordinates(s, [yy + uy, xx + ux], order=3, mode="reflect")
                      for s in y])
        # a scatterer seen at r appears where r + u(r) = its true pixel
        pos = np.clip(np.rint(pos - np.stack([uy[tuple(pos.T)], ux[tuple(pos.T)]], 1)),
                      0, [h - 1, w - 1]).astype(int)
    if "lines" in arts:
        offsets = np.cumsum(rng.normal(0, 0.15, h)) + rng.normal(0, 0.1, h)
        glitch = rng.choice(h, int(rng.integers(1, 4)), replace=False)
        offsets[glitch] += rng.normal(0, 2.0, len(glitch))
        y = y + sig * offsets[None, :, None]
    if "background" in arts:
        a, b, c = rng.normal(0, 1, 3)
        y = y + sig * (a * (yy / h - 0.5) + b * (xx / w - 0.5)
                       + 3 * c * ((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2))
    return InstrumentMap(y.astype(np.float32), k.astype(np.float32), pos, arts)
