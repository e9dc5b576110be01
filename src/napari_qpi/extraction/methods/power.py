"""A floor for the benchmark: the kernel's magnitude from the map's power spectrum.

|Y_E(q)|² ≈ |K_E(q)|² |X(q)|² for any scatterer layout X: with scatterers at random
pixels |X(q)|² is flat on average, so a smoothed power spectrum is |K_E(q)|² up to one
constant. Without phase information the kernel is taken centrosymmetric with zero phase:
K_E = F⁻¹ |K̂_E|, a real, symmetric kernel peaked at its centre.
"""

from __future__ import annotations

import numpy as np

from ...physics.kernels import crop_centered
from ...progress import checkpoint

__all__ = ["power_kernel"]


#: Slices whose spectra are computed together.
CHUNK = 8


def power_kernel(observation: np.ndarray, kernel_size: int, *,
                 window: float | None = None) -> np.ndarray:
    """Zero-phase kernel estimate from the power spectrum of each slice.

    Parameters
    ----------
    observation : (E, H, W) ndarray
        Maps (per-slice means are removed here).
    kernel_size : int
        Odd window k of the returned kernel.
    window : float, optional
        Half-width (px) of the triangular taper applied to the autocorrelation, which
        smooths the speckle of |X(q)|² in q-space; default ``kernel_size`` (the kernel's
        autocorrelation is 2k − 1 wide).

    Returns
    -------
    (E, k, k) ndarray
        Unit norm per energy, symmetric under r → −r, positive centre pixel.

    Notes
    -----
    The taper is a product of triangles (Bartlett windows), whose Fourier transform is
    non-negative, so the smoothed power spectrum stays non-negative. A flat noise floor,
    estimated as the 10th percentile of the smoothed spectrum, is removed.
    """
    obs = np.asarray(observation, dtype=float)
    if obs.ndim == 2:
        obs = obs[None]
    if obs.ndim != 3:
        raise ValueError(f"observation must be (H, W) or (E, H, W), got shape {obs.shape}")
    h, w = obs.shape[-2:]
    if kernel_size % 2 == 0 or kernel_size < 3 or kernel_size > min(h, w):
        raise ValueError(f"kernel_size={kernel_size} must be odd, ≥ 3 and ≤ the map size")
    half = float(kernel_size if window is None else window)
    # each slice on its own, a few at a time: a large grid's spectra take seconds, and a
    # Cancel is checked between the groups (..progress.checkpoint)
    parts = []
    for start in range(0, len(obs), CHUNK):
        checkpoint()
        parts.append(_power_kernel(obs[start:start + CHUNK], kernel_size, half))
    return np.concatenate(parts)


def _power_kernel(obs: np.ndarray, kernel_size: int, half: float) -> np.ndarray:
    h, w = obs.shape[-2:]
    obs = obs - obs.mean(axis=(-2, -1), keepdims=True)
    # zero-pad to twice the map: the autocorrelation is linear, not circular
    s = (2 * h, 2 * w)
    power = np.abs(np.fft.rfft2(obs, s=s)) ** 2
    auto = np.fft.irfft2(power, s=s)  # autocorrelation, lag 0 at index 0
    lag0 = np.fft.fftfreq(s[0], 1 / s[0])
    lag1 = np.fft.fftfreq(s[1], 1 / s[1])
    taper = (np.clip(1 - np.abs(lag0) / half, 0, None)[:, None]
             * np.clip(1 - np.abs(lag1) / half, 0, None)[None, :])
    smooth = np.fft.fft2(auto * taper).real
    floor = np.percentile(smooth, 10, axis=(-2, -1), keepdims=True)
    magnitude = np.sqrt(np.clip(smooth - floor, 0, None))
    kernel = crop_centered(np.fft.ifft2(magnitude).real, kernel_size)
    return kernel / (np.linalg.norm(kernel, axis=(-2, -1), keepdims=True) + 1e-30)
