"""Preprocessing of dI/dV maps before extraction (numpy/scipy only).

The lattice's steps (Bragg peaks, Lawler–Fujita drift correction) live in
:mod:`.lattice` and are re-exported here; :mod:`.pipeline` runs steps by name.

Every function takes an ``(E, Y, X)`` stack or a ``(Y, X)`` map, returns a new array of
the same shape (float32 stays float32, other dtypes become float64) and leaves its input
untouched. Rows are scan lines (x is the fast scan axis).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .._validation import check_choice, check_int, check_positive
from .lattice import correct_drift, find_bragg_peaks  # the lattice's steps, re-exported

__all__ = ["correct_drift", "crop", "deconvolve_lockin", "find_bragg_peaks", "flatten_lines",
           "line_offset_ratio", "normalize_slices", "remove_bragg_peaks",
           "subtract_background", "subtract_plane", "suppress_streaks"]


def _stack(data, name: str = "data") -> tuple[np.ndarray, bool]:
    """Copy ``data`` to a float (E, Y, X) array; say whether it was 2-D."""
    try:
        arr = np.asarray(data)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"{name} must be an (E, Y, X) or (Y, X) array ({exc})") from None
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be (E, Y, X) or (Y, X), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must hold real numbers, got {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    out = np.array(arr, dtype=dtype, copy=True)
    return (out[None] if arr.ndim == 2 else out), arr.ndim == 2


def _back(out: np.ndarray, was_2d: bool) -> np.ndarray:
    return out[0] if was_2d else out


def normalize_slices(data, *, method: str = "mean") -> np.ndarray:
    """Normalise each energy slice.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    method : {"mean", "zscore"}
        ``"mean"`` divides by the slice mean (the set-point correction: a constant-current
        feedback scales each dI/dV slice by an unknown factor); ``"zscore"`` subtracts the
        mean and divides by the standard deviation.

    Returns
    -------
    ndarray
        Same shape as ``data``.

    Examples
    --------
    >>> normalize_slices(np.full((2, 3, 3), 4.0))[0, 0, 0]
    1.0
    """
    check_choice(method, "method", ("mean", "zscore"))
    out, was_2d = _stack(data)
    mean = out.mean(axis=(1, 2), keepdims=True)
    if method == "mean":
        if np.any(np.abs(mean) <= 1e-12 * np.abs(out).max(axis=(1, 2), keepdims=True)):
            raise ValueError("a slice has zero mean; use method='zscore'")
        out /= mean
    elif method == "zscore":
        std = out.std(axis=(1, 2), keepdims=True)
        out -= mean
        out /= np.where(std > 0, std, 1.0)
    else:
        raise ValueError(f"method must be 'mean' or 'zscore', got {method!r}")
    return _back(out, was_2d)


def subtract_plane(data) -> np.ndarray:
    """Subtract the least-squares plane ``a + b·x + c·y`` from each slice
    (:func:`subtract_background` of degree 1).

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like

    Returns
    -------
    ndarray
        Same shape; a pure plane becomes zero.
    """
    return subtract_background(data, order=1)


def subtract_background(data, *, order: int = 2) -> np.ndarray:
    """Subtract the least-squares polynomial background of total degree ``order`` from
    each slice (order 1: a plane; 2, the default: a plane and a slow bowl).

    A 2-D polynomial of low degree varies on the scale of the whole map, far slower than
    any QPI wavelength, so removing it takes nothing a kernel explains.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    order : int
        Total degree, 0–4.

    Returns
    -------
    ndarray
        Same shape; a polynomial of that degree becomes zero.
    """
    order = check_int(order, "order", low=0, high=4)
    out, was_2d = _stack(data)
    _, ny, nx = out.shape
    y, x = np.mgrid[:ny, :nx]
    y = (y.ravel() - (ny - 1) / 2) / max(ny, 1)
    x = (x.ravel() - (nx - 1) / 2) / max(nx, 1)
    design = np.stack([x**i * y**j for i in range(order + 1) for j in range(order + 1 - i)],
                      axis=1)
    coef, *_ = np.linalg.lstsq(design, out.reshape(len(out), -1).T.astype(np.float64),
                               rcond=None)
    out -= (design @ coef).T.reshape(out.shape).astype(out.dtype)
    return _back(out, was_2d)


def line_offset_ratio(data) -> float:
    """How much more the scan lines' medians vary than the columns' (1: no line
    offsets; a map with per-line offsets reads several times more).

    The median of each row and of each column of every slice, after removing a plane;
    the ratio of the variances of their line-to-line differences, averaged over slices.
    Differences, so that a slow background or a smooth QPI variation does not count.
    """
    out, _ = _stack(data)
    out = subtract_background(out, order=1)
    rows = np.diff(np.median(out, axis=2), axis=1)
    cols = np.diff(np.median(out, axis=1), axis=1)
    return float(np.mean(rows.var(axis=1) / np.maximum(cols.var(axis=1), 1e-300)))


def deconvolve_lockin(data, *, time_constant: float) -> np.ndarray:
    """Undo the lock-in's exponential low-pass along the fast-scan axis (x, rows
    scanned left to right).

    A lock-in with time constant τ, sampled once per pixel, acts on each line as the
    one-pole filter y[n] = a·y[n−1] + (1 − a)·x[n] with a = exp(−1/τ); its exact inverse
    is x[n] = (y[n] − a·y[n−1]) / (1 − a). Amplifies noise at high spatial frequency by
    up to (1 + a)/(1 − a); use it when τ (in pixels: time constant × pixels per second)
    is known.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    time_constant : float
        τ in pixels along x (> 0).

    Returns
    -------
    ndarray
        Same shape.
    """
    tau = check_positive(time_constant, "time_constant")
    out, was_2d = _stack(data)
    a = float(np.exp(-1.0 / tau))
    out[:, :, 1:] = (out[:, :, 1:] - a * out[:, :, :-1]) / (1.0 - a)
    return _back(out, was_2d)


def flatten_lines(data, *, method: str = "median") -> np.ndarray:
    """Remove a background from every scan line (row) separately.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    method : {"median", "linear"}
        ``"median"`` subtracts each row's median (offset jumps between lines);
        ``"linear"`` subtracts each row's least-squares line (offset and slope).

    Returns
    -------
    ndarray
        Same shape.
    """
    check_choice(method, "method", ("median", "linear"))
    out, was_2d = _stack(data)
    if method == "median":
        out -= np.median(out, axis=2, keepdims=True)
    elif method == "linear":
        nx = out.shape[2]
        x = np.arange(nx) - (nx - 1) / 2
        slope = (out * x).sum(axis=2, keepdims=True) / max((x * x).sum(), 1e-300)
        out -= out.mean(axis=2, keepdims=True) + slope * x
    else:
        raise ValueError(f"method must be 'median' or 'linear', got {method!r}")
    return _back(out, was_2d)


def suppress_streaks(data, *, threshold: float = 5.0, min_length: int = 3) -> np.ndarray:
    """Replace scan-line streaks (tip changes along part of a line) by their neighbours.

    A pixel is a streak pixel when it departs from the mean of the pixels directly above
    and below by more than ``threshold`` robust standard deviations (1.4826 × MAD of that
    departure over the slice), within a run of at least ``min_length`` such pixels along
    its row. Streak pixels get the mean of the lines above and below.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    threshold : float
        Robust standard deviations.
    min_length : int
        Shortest run along x that counts as a streak (isolated spikes are left alone).

    Returns
    -------
    ndarray
        Same shape.
    """
    threshold = check_positive(threshold, "threshold")
    min_length = check_int(min_length, "min_length", low=1)
    out, was_2d = _stack(data)
    for s in out:
        padded = np.pad(s, ((1, 1), (0, 0)), mode="reflect")
        neighbours = 0.5 * (padded[:-2] + padded[2:])
        dev = s - neighbours
        mad = 1.4826 * np.median(np.abs(dev - np.median(dev)))
        if mad == 0:
            continue
        mask = np.abs(dev - np.median(dev)) > threshold * mad
        mask = ndimage.binary_opening(mask, structure=np.ones((1, int(min_length)), bool))
        s[mask] = neighbours[mask]
    return _back(out, was_2d)


def remove_bragg_peaks(data, *, n_peaks: int = 8, q_min: float = 0.3,
                       prominence: float | None = None, radius: float = 1.5,
                       method: str = "local") -> np.ndarray:
    """Take the atomic lattice's Bragg waves out of every slice.

    Peaks are found once on the energy-averaged power spectrum
    (:func:`~.lattice.find_bragg_peaks`). ``method="local"`` (default) subtracts each
    Bragg wave with its local amplitude and phase (:func:`~.lattice.lattice_waves`);
    ``"notch"`` multiplies each ±q pair of the FFT by ``1 - exp(-|q - q0|² / 2
    radius²)``. Both remove the same band around each peak, but on a map whose lattice
    period does not divide the map the notch leaves the peak's leakage along both axes
    (on the project's own instrument stacks, kernels then learned the leftover lattice).

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    n_peaks : int
        Most peaks considered (Bragg peaks come in ±q pairs: 6 for a hexagonal lattice).
    q_min : float
        Smallest |q| considered, as a fraction of the Nyquist frequency.
    prominence : float, optional
        How far above the local median a peak must stand (default
        :data:`~.lattice.PROMINENCE`).
    radius : float
        Width of the removed band around each peak, in FFT pixels.
    method : {"local", "notch"}
        Subtract each wave where it is (default), or notch the peaks out of the FFT.

    Returns
    -------
    ndarray
        Same shape.
    """
    from .lattice import PROMINENCE, lattice_waves

    radius = check_positive(radius, "radius")
    method = check_choice(method, "method", ("local", "notch"))
    out, was_2d = _stack(data)
    peaks = find_bragg_peaks(out, n_peaks=n_peaks, q_min=q_min,
                             prominence=PROMINENCE if prominence is None else prominence)
    if len(peaks) == 0:
        return _back(out, was_2d)
    if method == "local":
        out[:] = out - lattice_waves(out, peaks, radius=radius)
        return _back(out, was_2d)
    _, ny, nx = out.shape
    spec = np.fft.fft2(out.astype(np.float64))
    fy = np.fft.fftfreq(ny)[:, None] * 2 * np.pi  # rad/px, unshifted FFT order
    fx = np.fft.fftfreq(nx)[None, :] * 2 * np.pi
    notch = np.ones((ny, nx))
    for qy, qx in peaks:
        for sign in (1, -1):  # the pair
            dy = np.angle(np.exp(1j * (fy - sign * qy))) * ny / (2 * np.pi)
            dx = np.angle(np.exp(1j * (fx - sign * qx))) * nx / (2 * np.pi)
            notch *= 1 - np.exp(-(dy * dy + dx * dx) / (2 * radius * radius))
    spec *= notch
    out[:] = np.fft.ifft2(spec).real
    return _back(out, was_2d)


def crop(data, *, y: tuple[int, int] | None = None,
         x: tuple[int, int] | None = None) -> np.ndarray:
    """Cut out rows ``y[0]:y[1]`` and columns ``x[0]:x[1]`` (a copy).

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    y, x : (start, stop), optional
        Pixel ranges; ``None`` keeps the whole axis.

    Returns
    -------
    ndarray
        ``(E, y[1] - y[0], x[1] - x[0])`` or the 2-D equivalent.
    """
    out, was_2d = _stack(data)
    bounds = []
    for name, rng_, size in (("y", y, out.shape[1]), ("x", x, out.shape[2])):
        if rng_ is None:
            start, stop = 0, size
        elif isinstance(rng_, (str, bytes)) or np.ndim(rng_) != 1 or len(rng_) != 2:
            raise ValueError(f"{name} must be a (start, stop) pair of pixels, got {rng_!r}")
        else:
            start, stop = (check_int(v, name) for v in rng_)
        if not 0 <= start < stop <= size:
            raise ValueError(f"{name}={rng_} must satisfy 0 <= start < stop <= {size}")
        bounds.append(slice(start, stop))
    return _back(out[:, bounds[0], bounds[1]].copy(), was_2d)
