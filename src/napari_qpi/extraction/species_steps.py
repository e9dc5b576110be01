"""The two half-steps of the several-species fit (:mod:`.species`): every species'
scatterer map for fixed kernels, and every species' kernels (or amplitudes) for fixed
scatterer maps — both on the summed operator (:class:`~.operator.TypesOperator`).
"""

from __future__ import annotations

import numpy as np

from .fista import centre, fista
from .fit import merge_scatterers, noise_scaled_sparsity
from .operator import TypesOperator

__all__ = ["activations_given", "amplitudes_given", "exclusive", "kernels_given"]

#: Two types' scatterers closer than this (px, square) are one scatterer.
EXCLUSION = 2


def _lambda(kernels: np.ndarray, noise: np.ndarray, n_pixels: int) -> np.ndarray:
    """λ per type: :func:`~.fit.noise_scaled_sparsity` with each type's kernel norms per
    energy as its amplitudes."""
    norms = np.sqrt((kernels**2).sum(axis=(-2, -1)))  # (T, E)
    return np.array([noise_scaled_sparsity(a, noise, n_pixels) for a in norms])


def exclusive(x: np.ndarray, radius: int = EXCLUSION) -> np.ndarray:
    """One type per scatterer: a type's pixel is dropped where another type is stronger
    within ``radius`` px."""
    from scipy.ndimage import maximum_filter

    if len(x) == 1:
        return x
    near = np.stack([maximum_filter(s, size=2 * radius + 1) for s in x])
    out = x.copy()
    for t in range(len(x)):
        other = np.delete(near, t, axis=0).max(0)
        out[t][x[t] < other] = 0.0
    return out


def activations_given(y: np.ndarray, kernels: np.ndarray, noise: np.ndarray, *,
                      mask=None, x0=None, num_iter: int = 60) -> np.ndarray:
    """Each type's merged, exclusive scatterer map for fixed kernels (see module notes)."""
    op = TypesOperator(kernels, y.shape[-2:])
    lam = _lambda(kernels, noise, y.shape[-2] * y.shape[-1])
    start = np.zeros((len(kernels), *y.shape[-2:])) if x0 is None else x0
    x = fista(op, y, sparsity=lam, num_iter=num_iter, x0=start, mask=mask)
    # each species' groups whole (separation=None): cut at their peaks, one species'
    # blob also kept the other species' echoes as scatterers; on own two-species draws
    # (scripts/species_choice.py --n 12 --n-types 2) the species' tails moved by up to
    # −0.43, and whole groups gave what they gave before the cut existed
    x = exclusive(np.stack([merge_scatterers(s, separation=None) for s in x]))
    if not x.any():
        return x
    return fista(op, y, sparsity=0.0, num_iter=num_iter // 2, x0=x, support=x > 0,
                 mask=mask)


def kernels_given(y: np.ndarray, x: np.ndarray, size: int, *, mask=None, k0=None,
                  ridge: float = 1e-2, num_iter: int = 30) -> np.ndarray:
    """Least-squares kernels (T, E, size, size) for fixed activations (T, H, W).

    Conjugate gradients on (AᵀPA + μ) K = AᵀP Y, A: K ↦ Σ_t K_t ⊛ X_t, P the projection
    that removes each slice's mean over the fitted pixels (the offsets b_E), μ a ridge of
    ``ridge`` times the mean ‖X_t‖². Written here because no maintained solver takes this
    operator: the kernel side of the one convolution model.
    """
    e = y.shape[0]
    op = TypesOperator(np.zeros((len(x), e, size, size)), y.shape[-2:])
    mu = ridge * float(np.mean((x**2).sum(axis=(-2, -1))))

    def normal(k):
        return op.kernel_adjoint(centre(op.kernel_forward(k, x), mask), x, size) + mu * k

    k = np.zeros((len(x), e, size, size)) if k0 is None else np.array(k0, float)
    r = op.kernel_adjoint(centre(y, mask), x, size) - normal(k)
    p, rs = r.copy(), float((r * r).sum())
    for _ in range(int(num_iter)):
        ap = normal(p)
        alpha = rs / max(float((p * ap).sum()), 1e-300)
        k, r = k + alpha * p, r - alpha * ap
        rs_new = float((r * r).sum())
        if rs_new <= 1e-12 * rs or rs_new == 0:
            break
        p, rs = r + (rs_new / rs) * p, rs_new
    return k


def amplitudes_given(y: np.ndarray, kernels: np.ndarray, x: np.ndarray, mask=None) -> np.ndarray:
    """Joint least-squares amplitude per species and energy, (T, E): each energy's T × T
    normal equations of the species' patterns (offsets removed), on ``mask``."""
    parts = centre(TypesOperator(kernels, y.shape[-2:]).op.forward(x), mask)  # (T, E, H, W)
    yc = centre(y, mask)
    out = np.zeros(kernels.shape[:2])
    for e in range(y.shape[0]):
        m = parts[:, e].reshape(len(x), -1)
        gram = m @ m.T
        out[:, e] = np.linalg.lstsq(gram + 1e-12 * np.trace(gram) * np.eye(len(x)),
                                    m @ yc[e].ravel(), rcond=None)[0]
    return out
