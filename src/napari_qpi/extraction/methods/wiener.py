"""Guided classical baseline: Wiener deconvolution with known scatterer positions."""

from __future__ import annotations

import numpy as np


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
    from ..operator import ConvOperator, fft_grid

    e, h, w = observation.shape
    x = np.zeros((h, w))
    pos = np.rint(np.asarray(positions)).astype(int)
    np.add.at(x, (pos[:, 0], pos[:, 1]), 1.0)
    # the one operator on the full linear grid: the division in Fourier space is the
    # model here, and a grid with room for the whole linear result keeps it from wrapping
    op = ConvOperator(np.zeros((e, kernel_size, kernel_size)), (h, w),
                      fft_grid((h, w), kernel_size, full=True))
    xf = op.fft(x)
    yf = op.fft(observation - observation.mean(axis=(-2, -1), keepdims=True))
    reg = balance * float(np.mean(np.abs(xf) ** 2))
    kf = yf * np.conj(xf) / (np.abs(xf) ** 2 + reg)
    return op.window(op.ifft(kf), kernel_size)
