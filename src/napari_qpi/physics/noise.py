"""Noise and artefacts of real dI/dV maps: white and 1/f noise at a given SNR,
scan-line streaks, and a smooth background."""

from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_nonnegative, check_positive

NOISE_KINDS = ("white", "pink")


def _per_slice_var(signal: np.ndarray) -> np.ndarray:
    return signal.reshape(signal.shape[0], -1).var(axis=1)[:, None, None]


def add_noise(
    observation: np.ndarray, snr: float, *, kind: str = "white", rng=None
) -> np.ndarray:
    """Add noise so that var(signal) / var(noise) = ``snr`` in every energy slice.

    Parameters
    ----------
    observation : (E, H, W) ndarray
        Clean signal.
    snr : float
        Signal-to-noise ratio as a variance ratio (as in SBD-STM); ``inf`` adds none.
    kind : {"white", "pink"}
        White noise, or 1/f noise (power ∝ 1/|f|, as from tip and set-point drift).
    rng : int or numpy.random.Generator, optional

    Returns
    -------
    (E, H, W) ndarray
    """
    check_choice(kind, "noise", NOISE_KINDS)
    snr = check_positive(snr, "snr", allow_inf=True)
    if np.isinf(snr):
        return observation.copy()
    rng = np.random.default_rng(rng)
    noise = rng.standard_normal(observation.shape)
    if kind == "pink":
        fy = np.fft.fftfreq(observation.shape[-2])[:, None]
        fx = np.fft.rfftfreq(observation.shape[-1])[None, :]
        f = np.hypot(fy, fx)
        f[0, 0] = np.inf
        noise = np.fft.irfft2(np.fft.rfft2(noise) / np.sqrt(f), s=observation.shape[-2:])
    noise -= noise.mean(axis=(-2, -1), keepdims=True)
    noise *= np.sqrt(_per_slice_var(observation) / snr / _per_slice_var(noise))
    return observation + noise


def add_streaks(observation: np.ndarray, amplitude: float, *, rng=None) -> np.ndarray:
    """Add scan-line streaks: a random offset per row, shared across energies
    (a tip change lasts for the line), scaled by each slice's signal std."""
    if check_nonnegative(amplitude, "streaks") == 0:
        return observation.copy()
    rng = np.random.default_rng(rng)
    h = observation.shape[-2]
    offsets = rng.standard_normal(h) * (rng.random(h) < 0.15)  # a few bad lines
    offsets += 0.3 * rng.standard_normal(h)  # plus mild line-to-line jitter
    std = np.sqrt(_per_slice_var(observation))
    return observation + amplitude * std * offsets[None, :, None]


def add_background(observation: np.ndarray, amplitude: float, *, rng=None) -> np.ndarray:
    """Add a smooth background (tilted plane + broad bump) per slice, scaled by the
    slice's signal std times ``amplitude``."""
    if check_nonnegative(amplitude, "background") == 0:
        return observation.copy()
    rng = np.random.default_rng(rng)
    e, h, w = observation.shape
    yy, xx = np.mgrid[:h, :w]
    yy, xx = yy / h - 0.5, xx / w - 0.5
    out = observation.copy()
    std = np.sqrt(_per_slice_var(observation))[:, 0, 0]
    for i in range(e):
        a, b = rng.standard_normal(2)
        cy, cx = rng.uniform(-0.5, 0.5, 2)
        bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 0.3**2))
        out[i] += amplitude * std[i] * (a * yy + b * xx + bump)
    return out
