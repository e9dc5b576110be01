"""Point-spectroscopy corrections of a dI/dV stack: Feenstra normalisation and lock-in
polar coordinates.

A constant-current set-point scales every spectrum by a factor that depends on the
tip height over that pixel (the set-point effect), so dI/dV maps carry the
topography. Dividing by the total conductance I/V cancels the tunnelling matrix
element to first order (Feenstra, Stroscio & Fein, Surf. Sci. 181, 295 (1987)); where
I/V vanishes (in a gap, at V = 0) it is broadened by an exponential of width ΔV
(Feenstra, Phys. Rev. B 50, 4561 (1994)).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_nonnegative

__all__ = ["feenstra", "lockin_polar"]


def _on_bias_axis(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim not in (1, 3):
        raise ValueError(f"{name} must be an (E,) spectrum or an (E, Y, X) stack, got "
                         f"shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def feenstra(didv, current, bias, *, broadening: float = 0.0) -> np.ndarray:
    """Normalised conductance (dI/dV)/(I/V) of spectra or a stack.

    Parameters
    ----------
    didv : (E,) or (E, Y, X) array_like
        Differential conductance (lock-in or numerical), any units.
    current : same shape as ``didv``
        The tunnelling current of the same sweep, in units whose ratio to ``bias``
        matches ``didv``'s (e.g. nA, mV and nS/1000 — a constant factor only scales
        the result).
    bias : (E,) array_like
        The sample bias of each energy (mV), distinct.
    broadening : float
        ΔV (same unit as ``bias``): I/V is replaced by its average with weights
        exp(−|V − V′|/ΔV), so it stays finite in a gap. 0 (default) uses I/V as is,
        its value at V = 0 taken as the limit, i.e. interpolated from its neighbours.

    Returns
    -------
    ndarray
        Same shape as ``didv``, dimensionless (d ln I / d ln V).

    Examples
    --------
    >>> v = np.linspace(-50.0, 50.0, 11)
    >>> i = v + 1e-4 * v**3  # I = aV + bV³: (dI/dV)/(I/V) = (a + 3bV²)/(a + bV²)
    >>> np.round(feenstra(1 + 3e-4 * v**2, i, v)[[0, 10]], 4).tolist()
    [1.4, 1.4]
    """
    didv_arr = np.asarray(didv, dtype=float)
    cur = np.asarray(current, dtype=float)
    v = np.asarray(bias, dtype=float).ravel()
    if cur.shape != didv_arr.shape:
        raise ValueError(f"current (shape {cur.shape}) must match didv "
                         f"(shape {didv_arr.shape}); pass the current channel of the "
                         "same sweep")
    d2, c2 = _on_bias_axis(didv_arr, "didv"), _on_bias_axis(cur, "current")
    if v.size != d2.shape[0] or not np.all(np.isfinite(v)) or len(np.unique(v)) != v.size:
        raise ValueError(f"bias must hold {d2.shape[0]} distinct finite values, one per "
                         f"energy, got {v.size}")
    width = check_nonnegative(broadening, "broadening")
    zero = np.isclose(v, 0.0, atol=1e-9 * max(1.0, float(np.abs(v).max())))
    with np.errstate(divide="ignore", invalid="ignore"):
        conductance = c2 / v[:, None]
    if zero.any():
        if zero.all():
            raise ValueError("bias is 0 at every energy: I/V is undefined")
        order = np.argsort(v)
        good = order[~zero[order]]
        for j in np.flatnonzero(zero):  # the limit I/V → dI/dV(0), from the neighbours
            conductance[j] = [np.interp(v[j], v[good], col[good]) for col in conductance.T]
    if width > 0:
        weights = np.exp(-np.abs(v[:, None] - v[None, :]) / width)
        weights /= weights.sum(axis=1, keepdims=True)
        conductance = weights @ np.abs(conductance)
    if np.any(conductance == 0):
        raise ValueError("I/V is 0 at some energy (a gap, or no current channel): pass "
                         "broadening=ΔV (e.g. a tenth of the bias range)")
    return (d2 / conductance).reshape(didv_arr.shape)


def lockin_polar(x, y, *, degrees: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Lock-in X/Y channels as amplitude R and phase θ.

    R = sqrt(X² + Y²) is the signal whatever the reference phase; θ = atan2(Y, X)
    should be one value across a map (a drifting θ means the phase was set wrongly).

    Parameters
    ----------
    x, y : array_like
        In-phase and quadrature channels, same shape.
    degrees : bool
        θ in degrees (else radians).

    Returns
    -------
    r, theta : ndarray
        Same shape as ``x``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x (shape {x.shape}) and y (shape {y.shape}) must have the same "
                         "shape: pass the X and Y channels of one lock-in")
    theta = np.arctan2(y, x)
    return np.hypot(x, y), np.degrees(theta) if degrees else theta

