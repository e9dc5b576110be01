"""Guided classical baseline: Wiener deconvolution with known scatterer positions."""

from __future__ import annotations

import numpy as np

from ..physics.kernels import crop_centered


def wiener_kernel(
    observation: np.ndarray, positions: np.ndarray, kernel_size: int, *, balance: float = 1e-2
) -> np.ndarray:
    """K̂(q) = Ŷ(q) X̂*(q) / (|X̂(q)|² + λ) with X = Σᵢ δ(r − rᵢ), equal strengths.

    Parameters
    ----------
    observation : (E, H, W) ndarray
        Mean-removed maps.
    positions : (N, 2) ndarray
        Scatterer pixels (row, col).
    kernel_size : int
        Odd window of the returned kernel.
    balance : float
        λ relative to the mean of |X̂|².

    Returns
    -------
    (E, k, k) ndarray, scatterer at the centre pixel.
    """
    h, w = observation.shape[-2:]
    x = np.zeros((h, w))
    pos = np.rint(np.asarray(positions)).astype(int)
    np.add.at(x, (pos[:, 0], pos[:, 1]), 1.0)
    xf = np.fft.fft2(x)
    yf = np.fft.fft2(observation)
    reg = balance * float(np.mean(np.abs(xf) ** 2))
    kf = yf * np.conj(xf) / (np.abs(xf) ** 2 + reg)
    return crop_centered(np.real(np.fft.ifft2(kf)), kernel_size)
