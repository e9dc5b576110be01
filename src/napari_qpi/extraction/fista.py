"""The one sparse non-negative activation solver (FISTA), shared by every method.

The λ convention, once for the whole package::

    min_X  ½ Σ_E ‖M ⊙ (A_E X + b_E − Y_E)‖²  +  λ Σ |X|       (X ≥ 0 unless nonneg=False)

λ is absolute, in the units of Aᵀ Y (observation × kernel). The per-energy offsets b_E
are minimised in closed form (every residual has its mean over the fitted pixels
removed), so a map's background level never needs fitting. M is an optional pixel mask
(cross-validation holds pixels out through it). Callers that think in other units
convert: SBD passes λ in units of the stack's RMS for its unit-RMS stack,
:mod:`.fit` passes a multiple of the noise seen through the kernel.

Works on numpy arrays and torch tensors alike (the operator's backend), batched over
leading dimensions of the kernel (e.g. restarts).
"""

from __future__ import annotations

import math

import numpy as np

from ..progress import checkpoint
from .operator import ConvOperator, is_tensor

__all__ = ["centre", "centred_residual", "fista", "support_mask"]


def centre(a, mask=None, *, in_place: bool = False):
    """Maps with each slice's mean removed; with ``mask``: the mean over the mask, and
    zero outside it (the optimal per-energy offset of a least-squares fit on the mask).

    ``in_place`` (numpy arrays only) overwrites ``a``: on a 64-energy 256² grid each
    pass of a temporary costs milliseconds, and the solvers centre a fresh residual in
    every iteration.
    """
    if not in_place:
        if mask is None:
            return a - a.mean(axis=(-2, -1), keepdims=True)
        a = a * mask
        return (a - a.sum(axis=(-2, -1), keepdims=True) / mask.sum()) * mask
    if mask is None:
        a -= a.mean(axis=(-2, -1), keepdims=True)
        return a
    a *= mask
    a -= a.sum(axis=(-2, -1), keepdims=True) / mask.sum()
    a *= mask
    return a


def centred_residual(op: ConvOperator, x, y, mask=None):
    """A X + b − Y with the optimal per-energy offsets b (mean over ``mask`` removed)."""
    r = op.forward(x) - y
    # a fresh array, centred in place; a tensor out of place (autograd may need it)
    return centre(r, mask, in_place=not is_tensor(r))


def fista(op: ConvOperator, observation, *, sparsity: float = 0.0, num_iter: int = 100,
          x0=None, support=None, nonneg: bool = True, mask=None, lipschitz=None):
    """Sparse activation X for fixed kernels: FISTA on the objective in the module notes.

    Parameters
    ----------
    op : ConvOperator
        The kernels (…, E, k, k); batch dimensions broadcast.
    observation : (E, H, W) array
        Same backend as the operator (numpy or torch).
    sparsity : float or array
        λ, absolute (see the module notes); an array gives one λ per element of the
        kernels' batch dimensions.
    num_iter : int
    x0 : (…, H, W) array, optional
        Warm start (momentum restarts from it).
    support : (H, W) bool array, optional
        Pixels where scatterers may sit; zero elsewhere.
    nonneg : bool
        X ≥ 0 (scatterers of one kind) or a signed ℓ1 penalty.
    mask : (H, W) array of 0/1, optional
        Pixels in the data term; others are ignored (held out).
    lipschitz : array, optional
        Precomputed :meth:`ConvOperator.lipschitz`.

    Returns
    -------
    (…, H, W) array
    """
    y = observation
    if not is_tensor(y):
        # the data in the operator's precision: a float32 operator's FFTs return float32,
        # and float64 data would make every residual a float64 array twice the size (on a
        # 64×256² stack the iteration took 1.7× as long); results move by ~1e-7
        dtype = op.backend.dtype
        y = np.asarray(y, dtype)
        mask = None if mask is None else np.asarray(mask, dtype)
    L = op.lipschitz() if lipschitz is None else lipschitz
    step = 1.0 / (L + 1e-30)
    if not np.isscalar(step) and getattr(step, "ndim", 0) > 0:
        step = step[..., None, None]
    lam = sparsity if np.isscalar(sparsity) else np.asarray(sparsity)[..., None, None]
    if x0 is None:
        x = op.adjoint(y) * 0.0
        if getattr(op.kernel, "ndim", 3) > 3:  # a batch of kernels: one X per element
            x = x + op.backend.zeros((*op.kernel.shape[:-3], *op.shape), x)
    else:
        x = x0 * 1.0
    z, t = x, 1.0
    for _ in range(int(num_iter)):
        checkpoint()  # a Cancel lands within one iteration (..progress)
        v = z - step * op.adjoint(centred_residual(op, z, y, mask))
        if nonneg:
            x_new = (v - step * lam).clip(min=0)
        else:
            x_new = (v - step * lam).clip(min=0) - (-v - step * lam).clip(min=0)
        if support is not None:
            x_new = x_new * support
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return x


def support_mask(positions: np.ndarray, shape: tuple[int, int], radius: int = 1) -> np.ndarray:
    """Pixels within ``radius`` (square) of the given (row, col) positions."""
    from scipy.ndimage import binary_dilation

    mask = np.zeros(shape, bool)
    p = np.rint(np.asarray(positions)).astype(int)
    mask[np.clip(p[:, 0], 0, shape[0] - 1), np.clip(p[:, 1], 0, shape[1] - 1)] = True
    return binary_dilation(mask, np.ones((2 * radius + 1,) * 2, bool))
