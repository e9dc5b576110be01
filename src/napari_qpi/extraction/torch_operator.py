"""Torch twin of :class:`~napari_qpi.extraction.operator.ConvOperator`, batched.

Same model, same conventions: linear ('same') convolution of an (H, W) activation with odd
(E, k, k) kernel windows whose centre pixel is the scatterer, computed by FFTs on a grid
padded by the kernel width so nothing wraps around. Leading batch dimensions (e.g. random
restarts of a solver) broadcast, and tensors may live on any device, so SBD runs on CPU or
GPU with one code path.
"""

from __future__ import annotations

import scipy.fft as sfft
import torch

__all__ = ["TorchConvOperator"]


class TorchConvOperator:
    """A(X) = (K_E ⊛ X)_E cropped to the map, for batches of kernels.

    Parameters
    ----------
    kernel : (..., E, k, k) tensor
        Odd kernel windows, scatterer at the centre pixel; leading dimensions are a batch.
    shape : (int, int)
        Map shape (H, W).
    grid : (int, int), optional
        FFT grid; default the next fast size ≥ map + k − 1. Pass a larger one to reuse
        a grid across kernel sizes.
    """

    def __init__(self, kernel: torch.Tensor, shape: tuple[int, int],
                 grid: tuple[int, int] | None = None) -> None:
        if kernel.ndim < 3 or kernel.shape[-1] != kernel.shape[-2] or kernel.shape[-1] % 2 == 0:
            raise ValueError(f"kernel must be (..., E, k, k) with odd k, got {tuple(kernel.shape)}")
        self.kernel = kernel
        self.shape = tuple(int(s) for s in shape)
        self.size = int(kernel.shape[-1])
        self.radius = self.size // 2
        need = tuple(s + self.size - 1 for s in self.shape)
        if grid is None:
            grid = tuple(sfft.next_fast_len(n, real=True) for n in need)
        if any(g < n for g, n in zip(grid, need)):
            raise ValueError(f"grid {grid} is smaller than map + kernel − 1 = {need}")
        self.grid = tuple(int(g) for g in grid)
        self.kf = torch.fft.rfft2(self.embed(kernel), dim=(-2, -1))

    # --- helpers -------------------------------------------------------------------------
    def _indices(self, size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        r = size // 2
        offsets = torch.arange(-r, r + 1, device=device)
        return offsets % self.grid[0], offsets % self.grid[1]

    def embed(self, kernel: torch.Tensor) -> torch.Tensor:
        """Place (..., k, k) windows on the FFT grid with their centre at index 0."""
        out = kernel.new_zeros((*kernel.shape[:-2], *self.grid))
        idx0, idx1 = self._indices(self.size, kernel.device)
        out[..., idx0[:, None], idx1[None, :]] = kernel
        return out

    def window(self, grid_array: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Inverse of :meth:`embed`: the (..., k, k) window around index 0 of a grid array."""
        idx0, idx1 = self._indices(self.size if size is None else size, grid_array.device)
        return grid_array[..., idx0[:, None], idx1[None, :]]

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad (..., H, W) maps to the FFT grid."""
        h, w = self.shape
        return torch.nn.functional.pad(x, (0, self.grid[1] - w, 0, self.grid[0] - h))

    def crop(self, y: torch.Tensor) -> torch.Tensor:
        """(..., G0, G1) → (..., H, W)."""
        return y[..., : self.shape[0], : self.shape[1]]

    def fft(self, x: torch.Tensor) -> torch.Tensor:
        """rfft2 of (..., H, W) maps zero-padded to the grid."""
        return torch.fft.rfft2(self.pad(x), dim=(-2, -1))

    def ifft(self, xf: torch.Tensor) -> torch.Tensor:
        """irfft2 on the grid, not cropped."""
        return torch.fft.irfft2(xf, s=self.grid, dim=(-2, -1))

    # --- the operator ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., H, W) activation → (..., E, H, W) maps."""
        xf = self.fft(x).unsqueeze(-3)
        return self.crop(self.ifft(self.kf * xf))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """(..., E, H, W) maps → (..., H, W): Σ_E correlation with K_E."""
        yf = self.fft(y)
        return self.crop(self.ifft((torch.conj(self.kf) * yf).sum(-3)))

    def lipschitz(self) -> torch.Tensor:
        """L = max_q Σ_E |K̂_E(q)|² per batch element, the step bound for the activation."""
        return (self.kf.abs() ** 2).sum(-3).amax(dim=(-2, -1))

    def kernel_adjoint(self, y: torch.Tensor, x: torch.Tensor,
                       size: int | None = None) -> torch.Tensor:
        """Adjoint of the map K ↦ K ⊛ X (X fixed), i.e. the gradient of ⟨K ⊛ X, Y⟩ in K.

        Parameters
        ----------
        y : (..., E, H, W) tensor
        x : (..., H, W) tensor
        size : int, optional
            Odd window of the result; default this operator's kernel size.

        Returns
        -------
        (..., E, size, size) tensor
            ``G_E(d) = Σ_r Y_E(r) X(r − d)`` for ``|d| ≤ size // 2``.
        """
        corr = self.ifft(self.fft(y) * torch.conj(self.fft(x)).unsqueeze(-3))
        return self.window(corr, size)
