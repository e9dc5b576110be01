"""The lock-in's delay: each scatterer sits behind its pattern along the fast-scan axis.

A lock-in's time constant low-passes a dI/dV map along the fast-scan axis (x, rows scanned
left to right, as :func:`~napari_qpi.io.preprocess.deconvolve_lockin` takes it): the
one-pole filter y[n] = a·y[n−1] + (1 − a)·x[n], a = exp(−1/τ) per pixel. It delays every
pattern (by a/(1 − a) px, the filter's mean lag, for the longest waves; less for
shorter ones). A blind fit centres its kernel on the pattern it sees, so its kernel's
centre and its scatterer map sit ahead of the scatterers. :func:`finish
<.finish.finish>` reads the pole from the fit's residual and moves the kernel by the
delay (:func:`lockin_delay`), so the kernel's centre pixel is the scatterer again and the
scatterer map marks where the defects are.

The pole is read where nothing else breaks the map's x ↔ y symmetry: the residual's
noise went through the lock-in like the signal, and the rest of it (white noise, an
interpolation's, 1/f noise) is isotropic, so its power at (qy, qx) over that at (qx, qy)
is |H(qx)|² / |H(qy)|². A blind estimate from the map itself reads the QPI pattern's own
anisotropy too (a rectangular band's); the residual has little pattern left.

The direction cannot be read this way (|H|² is the same for a forward and a backward
scan): the delay is taken along +x. A map scanned right to left should be mirrored in x
before extraction.
"""

from __future__ import annotations

import numpy as np

from .noise import windowed_power

__all__ = ["POLE_FLOOR", "lockin_delay", "lockin_pole"]

#: Poles below this are left alone: a delay under a quarter pixel, not worth an
#: interpolation of the kernel. On own maps without a lock-in (18, white, 1/f, line,
#: oversampled and drifted) the estimate read 0.00–0.09.
POLE_FLOOR = 0.2
#: The frequency band read (fractions of π): above the lowest frequencies, where line
#: offsets and a background sit on the axes, below Nyquist.
BAND = (0.15, 0.9)
POLES = np.round(np.arange(0.0, 0.91, 0.01), 2)
#: Slices of a long stack whose power is averaged (evenly spread).
SLICES = 8


def _h2(a: float, w: np.ndarray) -> np.ndarray:
    """|H(ω)|² of the one-pole filter with pole ``a``."""
    return (1 - a) ** 2 / (1 - 2 * a * np.cos(w) + a * a)


def lockin_pole(residual: np.ndarray) -> float:
    """The lock-in's pole a = exp(−1/τ) along x, read from a fit's residual.

    Parameters
    ----------
    residual : (E, H, W) or (H, W) ndarray
        Data minus model; its slices' power spectra are averaged.

    Returns
    -------
    float
        In [0, 0.9]; 0 for a residual whose power is the same along x and y.

    Notes
    -----
    The ratio is compared in logs, pair by pair of mirrored frequencies off the axes and
    off the diagonal (where it is 1 whatever the pole), and the pole with the smallest
    median absolute misfit is kept: a median, since leftover Bragg peaks and the pattern's
    own anisotropy make outliers.
    """
    r = np.asarray(residual, dtype=float)
    r = r.reshape(-1, *r.shape[-2:])
    if len(r) > SLICES:  # a long stack: evenly spread slices are enough, and cheap
        r = r[np.unique(np.linspace(0, len(r) - 1, SLICES).round().astype(int))]
    n = min(r.shape[-2:])
    if n < 16:
        return 0.0
    power = windowed_power(r[:, :n, :n])
    if not np.all(np.isfinite(power)) or power.max() <= 0:
        return 0.0
    q = 2 * np.pi * np.fft.fftfreq(n)
    qy, qx = np.meshgrid(q, q, indexing="ij")
    lo, hi = BAND[0] * np.pi, BAND[1] * np.pi
    ay, ax = np.abs(qy), np.abs(qx)
    keep = ((ax > lo) & (ay > lo) & (ax < hi) & (ay < hi) & (np.abs(ax - ay) > 0.05 * np.pi))
    tiny = power.max() * 1e-12  # an oversampled map has almost no power near Nyquist
    ratio = (np.log(power + tiny) - np.log(power.T + tiny))[keep]
    wx, wy = qx[keep], qy[keep]
    misfit = [np.median(np.abs(ratio - np.log(_h2(a, wx) / _h2(a, wy)))) for a in POLES]
    return float(POLES[int(np.argmin(misfit))])


def lockin_delay(kernel: np.ndarray, pole: float) -> float:
    """How far the lock-in delays this kernel's pattern along x, px.

    The filter delays a wave of wavevector qx by −arg H(qx) / qx: its mean lag a/(1 − a)
    for the longest waves, less for shorter ones (a = 0.64: 1.8 px at qx → 0, 0.7 px at
    qx = 1 rad/px). The delay returned is the shift s that best undoes the filter's phase
    over the kernel's own power spectrum, the maximum of Σ_q |K(q)|² cos(arg H(qx) + qx·s):
    what a kernel centred on its pattern must move by to sit on its scatterer. On own
    stacks the mean lag overshot where the pole is large (0.59: 1.44 px, tail similarity
    0.745 → 0.834, where this shift, 0.95 px, gave 0.864).
    """
    a = float(pole)
    if a <= 0:
        return 0.0
    k = np.asarray(kernel, dtype=float)
    k = k.reshape(-1, *k.shape[-2:])
    power = (np.abs(np.fft.fft2(k)) ** 2).sum(0)
    n = k.shape[-1]
    qx = np.broadcast_to(2 * np.pi * np.fft.fftfreq(n), power.shape)
    phase = np.angle((1 - a) / (1 - a * np.exp(-1j * qx)))
    shifts = np.arange(0.0, 4.0 + 1e-9, 0.02)
    fit = [float((power * np.cos(phase + qx * s)).sum()) for s in shifts]
    return float(shifts[int(np.argmax(fit))])
