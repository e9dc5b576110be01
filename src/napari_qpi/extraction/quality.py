"""How well a kernel explains the map, without ground truth.

- **relative residual** ‖Y − a K ⊛ X − b‖ / ‖Y − mean Y‖ of the final fit (≤ 1);
- **cross-validated residual**: the same fit on a random 90 % of the pixels, the residual
  measured on the 10 % held out (in 8-px blocks, so correlated noise cannot be
  interpolated from neighbours). A kernel that is too compact can only copy the pixels it
  sees, one that is wrong cannot predict its neighbours, and noise cannot be predicted at
  all: only a kernel that explains the map predicts pixels it never saw. It is the one
  score that compares methods, windows and sparsities honestly on a user's own data
  (≈ the relative noise level for a perfect kernel, → 1 for a useless one);
- **whiteness** of the residual: spectral flatness (geometric / arithmetic mean) of its
  power spectrum smoothed over 5×5 frequencies, 1 for white noise, lower where structure
  the kernel did not explain is left;
- **residual structure**: the RMS of the residual's normalised autocorrelation at lags
  of 4–16 px, beyond the few pixels over which an instrument's noise is correlated
  (oversampling, lock-in): ≈ 0.01 for noise of any colour over short range, higher
  where a pattern the kernel does not explain is left (a lattice, another defect, 1/f
  noise);
- **active fraction** of the activation.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt, uniform_filter

from .fista import centre
from .fit import fit_map

__all__ = ["HOLDOUT", "cv_residual", "holdout_mask", "problem_cv", "residual_structure",
           "whiteness"]

#: Fraction of the pixels held out by :func:`cv_residual`.
HOLDOUT = 0.1
#: Side (px) of the held-out blocks: longer than the correlation length of the noise of
#: an oversampled, lock-in-filtered map (2–3 px), short enough that 10 % of a 128² map
#: is still ~25 blocks.
BLOCK = 8


def holdout_mask(shape: tuple[int, int], rng=0, fraction: float = HOLDOUT,
                 block: int = BLOCK) -> np.ndarray:
    """(H, W) float mask: 1 on the fitted pixels, 0 on the held-out ``fraction``, held
    out as ``block`` × ``block`` squares on a randomly offset grid.

    Blocks, because the noise of a real map is correlated over a few pixels (oversampling,
    the lock-in's low-pass, 1/f noise): a lone held-out pixel is predicted from its
    neighbours by any dense enough activation, a held-out block is not.
    """
    rng = np.random.default_rng(rng)
    h, w = shape
    b = max(1, min(int(block), min(h, w) // 8))  # small maps: smaller blocks
    oy, ox = rng.integers(0, b, 2)
    draw = rng.random((h // b + 2, w // b + 2))
    keep = draw >= fraction
    grid = np.kron(keep, np.ones((b, b), bool))[oy:oy + h, ox:ox + w]
    if grid.all():  # nothing held out (a small map): the block of the lowest draw
        # among those wholly inside the map (maps are ≥ 8 px, so h // b ≥ 8)
        i, j = np.unravel_index(np.argmin(draw[1:h // b, 1:w // b]), (h // b - 1, w // b - 1))
        keep[i + 1, j + 1] = False
        grid = np.kron(keep, np.ones((b, b), bool))[oy:oy + h, ox:ox + w]
    return grid.astype(float)


def heldout_misfit(y: np.ndarray, pred: np.ndarray, train: np.ndarray,
                   held: np.ndarray | None = None) -> np.ndarray:
    """Model − data on the held-out pixels (zero elsewhere), each slice's offset b_E
    taken from the fitted pixels ``train`` only; ``held`` defaults to ``1 − train``.
    Leading batch dimensions of ``pred`` (views, candidates) broadcast."""
    held = 1.0 - train if held is None else held
    b = ((y - pred) * train).sum(axis=(-2, -1), keepdims=True) / max(float(train.sum()), 1.0)
    return (pred + b - y) * held


def cv_residual(observation: np.ndarray, kernel: np.ndarray, *, noise: np.ndarray,
                sparsity: float | None = None, support: np.ndarray | None = None,
                rng=0, rounds: int = 2, num_iter: int = 40,
                away: float | None = None, merge: bool = False) -> float:
    """Residual on held-out pixels of a fit on the others (see the module notes).

    Parameters
    ----------
    observation : (E, H, W) ndarray
        Mean-removed maps.
    kernel : (E, k, k) ndarray
        Kernel shape to score.
    noise : (E,) ndarray
        Noise level per slice.
    sparsity, support, merge
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
    from .sparsity import heldout_residual

    y = np.asarray(observation, dtype=float)
    train = holdout_mask(y.shape[-2:], rng)
    if away is None:
        return heldout_residual(y, kernel, noise, train, multiplier=sparsity,
                                support=support, rounds=rounds, num_iter=num_iter,
                                merge=merge)
    fit = fit_map(y, kernel, noise=noise, sparsity=sparsity, support=support, mask=train,
                  rounds=rounds, num_iter=num_iter, merge=merge)
    from .operator import ConvOperator

    held = 1.0 - train
    x = fit.activation
    if x.max() > 0:
        held = held * (distance_transform_edt(x < 0.2 * x.max()) > away)
    pred = ConvOperator(fit.kernel, y.shape[-2:]).forward(fit.activation)
    r = heldout_misfit(y, pred, train, held)
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


def residual_structure(residual: np.ndarray, lags: tuple[int, int] = (4, 16)) -> float:
    """RMS of the residual's normalised autocorrelation over lags ``lags[0]``–``lags[1]``
    px (the largest over slices); see the module notes."""
    r = np.asarray(residual, dtype=float)
    r = r.reshape(-1, *r.shape[-2:])
    h, w = r.shape[-2:]
    s = (2 * h, 2 * w)
    yy, xx = np.mgrid[-h:h, -w:w]
    ring = np.fft.ifftshift((np.hypot(yy, xx) >= lags[0]) & (np.hypot(yy, xx) <= lags[1]))
    ones = np.fft.irfft2(np.abs(np.fft.rfft2(np.ones((h, w)), s=s)) ** 2, s=s)
    out = 0.0
    for sl in r:
        sl = sl - sl.mean()
        if not np.any(sl):
            continue
        auto = np.fft.irfft2(np.abs(np.fft.rfft2(sl, s=s)) ** 2, s=s)
        auto = auto / np.maximum(ones, 1.0) / max(float(auto[0, 0]) / (h * w), 1e-300)
        out = max(out, float(np.sqrt(np.mean(auto[ring] ** 2))))
    return out
