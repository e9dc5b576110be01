"""Physical scale: learned methods see every map at a working scale set by its QPI.

The networks work in pixels and were trained on oscillation periods of ~3–40 px. A map
with a known pixel size (Å/px) is resampled so that its mean QPI wavelength spans
:data:`TARGET_PERIOD_PX` pixels, the kernel is estimated there and mapped back to the
map's own pixels. The mean wavelength is a physical quantity (Å), so the same surface
sampled at two pixel sizes gives the same working image and the same kernel in Å.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import rescale

#: Mean QPI wavelength at the working scale, in pixels (middle of the trained range).
TARGET_PERIOD_PX = 10.0
#: Bounds on the resampled map side, in pixels.
MIN_SIDE, MAX_SIDE = 96, 320


def mean_wavelength(observation: np.ndarray) -> float:
    """Power-weighted mean wavelength (px) of mean-free maps (E, H, W).

    The centroid of |Y(q)|² over q (DC excluded) scales exactly with the sampling,
    unlike a peak pick.
    """
    e, h, w = observation.shape
    win = np.hanning(h)[:, None] * np.hanning(w)[None, :]
    p = (np.abs(np.fft.fft2((observation - observation.mean((-2, -1), keepdims=True)) * win))
         ** 2).sum(0)
    qy = np.fft.fftfreq(h)[:, None]
    qx = np.fft.fftfreq(w)[None, :]
    q = np.hypot(qy, qx)
    use = q > 1.5 / min(h, w)  # beyond the window's own blur of DC
    qbar = float((q[use] * p[use]).sum() / (p[use].sum() + 1e-30))
    return 1.0 / max(qbar, 1e-6)


def working_factor(observation: np.ndarray) -> float:
    """Zoom factor (working px per map px) that puts the mean wavelength at the target."""
    h, w = observation.shape[-2:]
    f = TARGET_PERIOD_PX / mean_wavelength(observation)
    lo, hi = MIN_SIDE / min(h, w), MAX_SIDE / max(h, w)
    return float(np.clip(f, lo, max(lo, hi)))


def resample(maps: np.ndarray, factor: float) -> np.ndarray:
    """Resample (E, H, W) by ``factor`` (anti-aliased when shrinking)."""
    if abs(factor - 1) < 1e-3:
        return maps
    return np.stack([rescale(m, factor, order=3, anti_aliasing=factor < 1, mode="reflect")
                     for m in maps])


def kernel_to_map(kernel: np.ndarray, factor: float, size: int) -> np.ndarray:
    """Map (E, k, k) working-scale kernels back to the map's pixels, window ``size``.

    The centre pixel stays the scatterer: the kernel is resampled about its centre.
    """
    if abs(factor - 1) < 1e-3:
        k = kernel
    else:
        k = np.stack([rescale(m, 1 / factor, order=3, anti_aliasing=factor > 1,
                              mode="constant") for m in kernel])
    # centre pixel of a rescaled odd window: (n - 1) / 2 maps to (n' - 1) / 2 only when
    # n' is odd, so pad to odd first
    if k.shape[-1] % 2 == 0:
        k = np.pad(k, ((0, 0), (0, 1), (0, 1)))
    c = k.shape[-1] // 2
    h = size // 2
    out = np.zeros((k.shape[0], size, size))
    lo, hi = max(0, c - h), min(k.shape[-1], c + h + 1)
    out[:, h - (c - lo): h + (hi - c), h - (c - lo): h + (hi - c)] = k[:, lo:hi, lo:hi]
    return out
