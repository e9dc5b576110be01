"""Sparse non-negative activation by FISTA, shared across energies."""

from __future__ import annotations

import numpy as np

from .operator import ConvOperator


def sparse_activation(
    observation: np.ndarray,
    kernel: np.ndarray,
    *,
    sparsity: float = 0.1,
    num_iter: int = 100,
    nonnegative: bool = True,
    support: np.ndarray | None = None,
    x0: np.ndarray | None = None,
) -> np.ndarray:
    """Solve min_X ½ Σ_E ‖K_E ⊛ X − Y_E‖² + λ‖X‖₁ (X ≥ 0) by FISTA.

    Parameters
    ----------
    observation : (E, H, W) ndarray
        Maps with their mean removed.
    kernel : (E, k, k) ndarray
    sparsity : float
        λ relative to max |Aᵀ Y| (0 keeps everything, 1 nothing).
    num_iter : int
    nonnegative : bool
    support : (H, W) bool ndarray, optional
        Pixels where scatterers may sit (e.g. around known positions); zero elsewhere.
    x0 : (H, W) ndarray, optional
        Warm start (e.g. the previous activation of an alternating solver).

    Returns
    -------
    (H, W) ndarray
    """
    op = ConvOperator(kernel, observation.shape[-2:])
    step = 1.0 / op.lipschitz()
    aty = op.adjoint(observation)
    lam = sparsity * float(np.abs(aty).max())
    x = np.zeros(observation.shape[-2:]) if x0 is None else np.array(x0, dtype=float)
    z, t = x.copy(), 1.0
    for _ in range(num_iter):
        grad = op.adjoint(op.forward(z)) - aty
        v = z - step * grad
        x_new = np.maximum(v - step * lam, 0) if nonnegative else (
            np.sign(v) * np.maximum(np.abs(v) - step * lam, 0))
        if support is not None:
            x_new = x_new * support
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return x


def support_mask(positions: np.ndarray, shape: tuple[int, int], radius: int = 1) -> np.ndarray:
    """Pixels within ``radius`` (square) of the given (row, col) positions."""
    from scipy.ndimage import binary_dilation

    mask = np.zeros(shape, bool)
    p = np.rint(np.asarray(positions)).astype(int)
    mask[np.clip(p[:, 0], 0, shape[0] - 1), np.clip(p[:, 1], 0, shape[1] - 1)] = True
    return binary_dilation(mask, np.ones((2 * radius + 1,) * 2, bool))
