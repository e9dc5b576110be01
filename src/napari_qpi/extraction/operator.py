"""The convolution model Y_E = K_E ⊛ X as an operator with forward and adjoint.

Every solver (FISTA, SBD, refinement) talks to the data only through this object.
Linear (not circular) convolution: the activation lives on the map's own pixels and the
kernel's centre pixel is the scatterer; FFTs run on a grid padded by the kernel radius so
nothing wraps around.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft


class ConvOperator:
    """A(X) = (K_E ⊛ X)_E cropped to the map ('same' convolution).

    Parameters
    ----------
    kernel : (E, k, k) ndarray
        Odd kernel windows, scatterer at the centre pixel.
    shape : (int, int)
        Map shape (H, W).
    """

    def __init__(self, kernel: np.ndarray, shape: tuple[int, int]) -> None:
        kernel = np.asarray(kernel, dtype=float)
        if kernel.ndim == 2:
            kernel = kernel[None]
        self.kernel = kernel
        self.shape = tuple(int(s) for s in shape)
        k = kernel.shape[-1]
        self.radius = k // 2
        self.grid = tuple(sfft.next_fast_len(s + k - 1, real=True) for s in self.shape)
        # kernel embedded with its centre at index 0 (fft ordering)
        emb = np.zeros((kernel.shape[0], *self.grid))
        idx = np.r_[-self.radius : self.radius + 1]
        emb[:, idx[:, None] % self.grid[0], idx[None, :] % self.grid[1]] = kernel
        self.kf = sfft.rfft2(emb, axes=(-2, -1), workers=-1)

    def _pad(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((*x.shape[:-2], *self.grid))
        out[..., : self.shape[0], : self.shape[1]] = x
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(H, W) activation → (E, H, W) maps."""
        xf = sfft.rfft2(self._pad(x), axes=(-2, -1), workers=-1)
        y = sfft.irfft2(self.kf * xf, s=self.grid, axes=(-2, -1), workers=-1)
        return y[..., : self.shape[0], : self.shape[1]]

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """(E, H, W) maps → (H, W): Σ_E correlation with K_E."""
        yf = sfft.rfft2(self._pad(y), axes=(-2, -1), workers=-1)
        x = sfft.irfft2((np.conj(self.kf) * yf).sum(0), s=self.grid, axes=(-2, -1), workers=-1)
        return x[: self.shape[0], : self.shape[1]]

    def lipschitz(self) -> float:
        """L = max_q Σ_E |K̂_E(q)|², the step bound for gradient methods."""
        return float((np.abs(self.kf) ** 2).sum(0).max())
