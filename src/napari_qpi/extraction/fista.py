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

    Returns
    -------
    (H, W) ndarray
    """
    op = ConvOperator(kernel, observation.shape[-2:])
    step = 1.0 / op.lipschitz()
    aty = op.adjoint(observation)
    lam = sparsity * float(np.abs(aty).max())
    x = np.zeros(observation.shape[-2:])
    z, t = x.copy(), 1.0
    for _ in range(num_iter):
        grad = op.adjoint(op.forward(z)) - aty
        v = z - step * grad
        x_new = np.maximum(v - step * lam, 0) if nonnegative else (
            np.sign(v) * np.maximum(np.abs(v) - step * lam, 0))
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return x
