"""Point-spectroscopy corrections of a dI/dV stack: Feenstra normalisation and lock-in
polar coordinates.

A constant-current set-point scales every spectrum by a factor that depends on the
tip height over that pixel (the set-point effect), so dI/dV maps carry the
topography. Dividing by the total conductance I/V cancels the tunnelling matrix
element to first order (Feenstra, Stroscio & Fein, Surf. Sci. 181, 295 (1987)); where
I/V vanishes (in a gap, at V = 0) it is broadened by an exponential of width ΔV
(Feenstra, Phys. Rev. B 50, 4561 (1994)).

A lock-in records dI/dV in its own units (volts at its output, through a gain the file
does not state), the current channel in amperes: their ratio carries an unknown
constant. :func:`lockin_gain` reads that constant from the data (the lock-in signal,
integrated along the bias, is proportional to the current of the same sweep), so
:func:`feenstra` returns the dimensionless d ln I / d ln V a physicist compares across
files.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_nonnegative

__all__ = ["feenstra", "lockin_gain", "lockin_polar"]


def _on_bias_axis(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim not in (1, 3):
        raise ValueError(f"{name} must be an (E,) spectrum or an (E, Y, X) stack, got "
                         f"shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def lockin_gain(didv, current, bias) -> float:
    """The factor that puts a lock-in dI/dV into the current's units per bias unit.

    The least-squares c of ``c · ∫ didv dV ≈ I`` up to one offset per pixel, over every
    energy and pixel: the lock-in signal integrated along the bias (trapezoids) against
    the current of the same sweep. Integrating, rather than differentiating the current,
    keeps coarse bias steps and current noise from biasing c (on a cubic I(V) at 6
    energies: 1.6 % off, against 6 % for the numerical derivative).

    Parameters
    ----------
    didv, current : (E,) or (E, Y, X) array_like
        The lock-in channel and the current of the same sweep, any units.
    bias : (E,) array_like
        Sample bias of each energy, distinct (at least 3).

    Returns
    -------
    float
        c, positive when the lock-in's phase gives dI/dV its usual sign.

    Examples
    --------
    >>> v = np.linspace(-50.0, 50.0, 21)  # mV
    >>> current = 1e-12 * (v + 1e-4 * v**3)  # A
    >>> didv = 1e-12 * (1 + 3e-4 * v**2) / 2e-3  # a lock-in reading 2 mV/(pA/mV)
    >>> round(lockin_gain(didv, current, v) / 2e-3, 2)
    1.0
    """
    d = _on_bias_axis(np.asarray(didv, dtype=float), "didv")
    cur = _on_bias_axis(np.asarray(current, dtype=float), "current")
    v = np.asarray(bias, dtype=float).ravel()
    if cur.shape != d.shape:
        raise ValueError(f"current (shape {np.shape(current)}) must match didv (shape "
                         f"{np.shape(didv)}); pass the current channel of the same sweep")
    if v.size != d.shape[0] or v.size < 3 or len(np.unique(v)) != v.size:
        raise ValueError(f"bias must hold {d.shape[0]} (≥ 3) distinct values, one per "
                         f"energy, got {v.size}")
    return _gain(d, cur, v)


def _gain(d: np.ndarray, cur: np.ndarray, v: np.ndarray) -> float:
    """:func:`lockin_gain` of checked (E, N) channels and (E,) biases."""
    from scipy.integrate import cumulative_trapezoid

    order = np.argsort(v)
    s = cumulative_trapezoid(d[order], v[order], axis=0, initial=0.0)
    i = cur[order]
    ok = np.isfinite(s).all(0) & np.isfinite(i).all(0)  # pixels with a whole sweep
    s, i = s[:, ok] - s[:, ok].mean(0), i[:, ok] - i[:, ok].mean(0)
    ss = float((s**2).sum())
    if ss == 0:
        raise ValueError("didv is constant 0 along the bias: pass the lock-in (dI/dV) "
                         "channel")
    return float((s * i).sum() / ss)


def feenstra(didv, current, bias, *, broadening: float = 0.0,
             calibrate: bool = True) -> np.ndarray:
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
    calibrate : bool
        Put ``didv`` into the current's units first (:func:`lockin_gain`; default), so
        the result is dimensionless whatever the lock-in's gain and the channels' units.
        False: ``didv`` is taken as given, and the result carries the ratio of its unit
        to the current's per bias unit.

    Returns
    -------
    ndarray
        Same shape as ``didv``: d ln I / d ln V, about 1 for an ohmic junction.

    Examples
    --------
    >>> v = np.linspace(-50.0, 50.0, 11)
    >>> i = v + 1e-4 * v**3  # I = aV + bV³: (dI/dV)/(I/V) = (a + 3bV²)/(a + bV²)
    >>> np.round(feenstra(1 + 3e-4 * v**2, i, v, calibrate=False)[[0, 10]], 4).tolist()
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
    if calibrate:
        if v.size < 3:
            raise ValueError(f"calibrate=True reads the lock-in's gain from the sweep and "
                             f"needs ≥ 3 energies, got {v.size}; pass calibrate=False")
        d2 = d2 * _gain(d2, c2, v)
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

