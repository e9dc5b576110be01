"""Physical scale: learned methods see every map at a working scale set by its QPI.

The networks work in pixels and were trained on oscillation periods of ~3–40 px at
every pixel size, so within that range they are scale-covariant by training and a map
is best used as it is: resampling adds interpolation blur the networks never saw (a
square-lattice map upsampled 1.5× lost half its tail similarity). A map with a known
pixel size (Å/px) whose power-weighted mean QPI wavelength lies outside
:data:`COMFORT_PX` is resampled to the nearest edge of that band, the kernel estimated
there and mapped back to the map's own pixels. The mean wavelength is a physical
quantity (Å), so the same surface sampled at two pixel sizes gives the same kernel in Å
either way.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import rescale

#: Mean QPI wavelengths (px) the networks read as they are; outside, the map is resampled.
COMFORT_PX = (4.0, 20.0)
#: Bounds on the resampled map side, in pixels.
MIN_SIDE, MAX_SIDE = 96, 320


def mean_wavelength(observation: np.ndarray) -> float:
    """Power-weighted mean wavelength (px) of mean-free maps (E, H, W).

    The centroid of |Y(q)|² over q (DC excluded) scales exactly with the sampling,
    unlike a peak pick. White noise adds a flat floor to |Y(q)|² that would pull the
    centroid to short wavelengths on noisy maps; the floor — the median power beyond
    |q| > 0.375 cycles/px, where a band-limited QPI signal has little — is removed first.
    """
    from .noise import windowed_power

    e, h, w = observation.shape
    p = windowed_power(observation)
    qy = np.fft.fftfreq(h)[:, None]
    qx = np.fft.fftfreq(w)[None, :]
    q = np.hypot(qy, qx)
    p = np.clip(p - np.median(p[q > 0.375]), 0, None)
    use = q > 1.5 / min(h, w)  # beyond the window's own blur of DC
    qbar = float((q[use] * p[use]).sum() / (p[use].sum() + 1e-30))
    return 1.0 / max(qbar, 1e-6)


def working_factor(observation: np.ndarray) -> float:
    """Zoom factor (working px per map px): 1 inside :data:`COMFORT_PX`, else the one
    that brings the mean wavelength to the band's nearest edge."""
    h, w = observation.shape[-2:]
    lam = mean_wavelength(observation)
    f = float(np.clip(lam, *COMFORT_PX) / lam)
    if f < 1:  # shrinking: keep at least MIN_SIDE px (or the map's own size)
        f = max(f, min(1.0, MIN_SIDE / min(h, w)))
    elif f > 1:  # enlarging: at most MAX_SIDE px
        f = min(f, max(1.0, MAX_SIDE / max(h, w)))
    return f


def resample(maps: np.ndarray, factor: float) -> np.ndarray:
    """Resample (E, H, W) by ``factor`` (anti-aliased when shrinking)."""
    if abs(factor - 1) < 1e-3:
        return maps
    return np.stack([rescale(m, factor, order=3, anti_aliasing=factor < 1, mode="reflect")
                     for m in maps])


def center_window(kernel: np.ndarray, size: int) -> np.ndarray:
    """Crop or zero-pad odd (..., k, k) windows to (..., size, size) about the centre pixel.

    The one centre-window helper of the package: the centre pixel (the scatterer) stays
    the centre pixel.
    """
    k = kernel.shape[-1]
    if k == size:
        return kernel
    if k > size:
        o = (k - size) // 2
        return kernel[..., o:o + size, o:o + size]
    p = (size - k) // 2
    return np.pad(kernel, [(0, 0)] * (kernel.ndim - 2) + [(p, p), (p, p)])


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
    return center_window(k, size)
