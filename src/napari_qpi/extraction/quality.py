"""How well a kernel explains the map, without ground truth.

- **relative residual** ‖Y − a K ⊛ X − b‖ / ‖Y − mean Y‖ of the final fit (≤ 1);
- **cross-validated residual**: the same fit on a random 90 % of the pixels, the residual
  measured on the 10 % held out. A kernel that is too compact can only copy the pixels it
  sees, one that is wrong cannot predict its neighbours, and noise cannot be predicted at
  all: only a kernel that explains the map predicts pixels it never saw. It is the one
  score that compares methods, windows and sparsities honestly on a user's own data
  (≈ the relative noise level for a perfect kernel, → 1 for a useless one);
- **whiteness** of the residual: spectral flatness (geometric / arithmetic mean) of its
  power spectrum smoothed over 5×5 frequencies, 1 for white noise, lower where structure
  the kernel did not explain is left;
- **active fraction** of the activation.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt, uniform_filter

from .fista import centre
from .fit import fit_map

__all__ = ["HOLDOUT", "cv_residual", "holdout_mask", "problem_cv", "whiteness"]

#: Fraction of the pixels held out by :func:`cv_residual`.
HOLDOUT = 0.1


def holdout_mask(shape: tuple[int, int], rng=0, fraction: float = HOLDOUT) -> np.ndarray:
    """(H, W) float mask: 1 on the fitted pixels, 0 on the held-out ``fraction``."""
    rng = np.random.default_rng(rng)
    return (rng.random(shape) >= fraction).astype(float)


def cv_residual(observation: np.ndarray, kernel: np.ndarray, *, noise: np.ndarray,
                sparsity: float | None = None, support: np.ndarray | None = None,
                rng=0, rounds: int = 2, num_iter: int = 40,
                away: float | None = None) -> float:
    """Residual on held-out pixels of a fit on the others (see the module notes).

    Parameters
    ----------
    observation : (E, H, W) ndarray
        Mean-removed maps.
    kernel : (E, k, k) ndarray
        Kernel shape to score.
    noise : (E,) ndarray
        Noise level per slice.
    sparsity, support
        As in :func:`~.fit.fit_map`.
    rng : int
        Seed of the held-out pixels (the same seed scores every candidate on the same
        pixels).
    away : float, optional
        Score only held-out pixels farther than ``away`` px from the fit's scatterers
        (activation above a fifth of its maximum): the kernel's tail alone predicts them.

    Returns
    -------
    float
        ‖held-out residual‖ / ‖held-out observation − its mean‖.
    """
    y = np.asarray(observation, dtype=float)
    train = holdout_mask(y.shape[-2:], rng)
    fit = fit_map(y, kernel, noise=noise, sparsity=sparsity, support=support, mask=train,
                  rounds=rounds, num_iter=num_iter)
    from .operator import ConvOperator

    held = 1.0 - train
    x = fit.activation
    if away is not None and x.max() > 0:
        held = held * (distance_transform_edt(x < 0.2 * x.max()) > away)
    pred = ConvOperator(fit.kernel, y.shape[-2:]).forward(fit.activation)
    # offsets b_E from the fitted pixels only
    b = ((y - pred) * train).sum(axis=(-2, -1), keepdims=True) / train.sum()
    r = (pred + b - y) * held
    return float(np.linalg.norm(r) / max(np.linalg.norm(centre(y, held)), 1e-300))


def problem_cv(problem, kernel, sparsity: float | None = None) -> float:
    """:func:`cv_residual` of a kernel on a prepared
    :class:`~napari_qpi.extraction.registry.Problem` (its noise, positions and seed), so
    every candidate, window and scale is scored on the same held-out pixels."""
    from .fista import support_mask

    y = problem.observation
    support = None if problem.positions is None else support_mask(problem.positions,
                                                                   y.shape[-2:])
    return cv_residual(y, np.asarray(kernel, float), noise=problem.noise, sparsity=sparsity,
                       support=support, rng=problem.rng)


def whiteness(residual: np.ndarray) -> float:
    """Spectral flatness of the residual's smoothed power spectrum (mean over slices)."""
    r = np.asarray(residual, dtype=float)
    r = r.reshape(-1, *r.shape[-2:])
    out = []
    for s in r:
        if not np.any(s):
            continue
        p = np.abs(np.fft.fft2(s - s.mean())) ** 2
        p = uniform_filter(np.fft.fftshift(p), size=5, mode="wrap")
        p = np.maximum(p, 1e-300)
        out.append(float(np.exp(np.mean(np.log(p))) / np.mean(p)))
    return float(np.mean(out)) if out else 1.0
