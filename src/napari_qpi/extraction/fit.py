"""The data-consistent final fit: what a kernel's shape leaves free, fitted to the map.

Every method returns a kernel *shape* K_E; :func:`fit_map` then fits, jointly and by least
squares, what the shape does not fix::

    Y_E ≈ a_E (K̃_E ⊛ X) + b_E,   K̃_E = K_E / ‖K_E‖,   X ≥ 0 shared,   a_E signed

- the shared non-negative activation X (the one :func:`~.fista.fista`, ℓ1 weight λ);
- a signed amplitude a_E per energy (closed form), so the returned kernel a_E K̃_E carries
  the real relative amplitude and sign across energies — a kernel that changes sign with
  energy does so in the result, not by each slice's own normalisation;
- the offsets b_E (closed form, inside FISTA).

λ follows the data's noise (:func:`noise_scaled_sparsity`); the support found is then
refitted without the ℓ1 shrinkage (debiasing), and a final amplitude fit — an orthogonal
projection per energy — makes the relative residual ≤ 1 by construction. If the method's
own activation explains the map better, it is kept. Slices without signal (constant)
are left out of the fit (a_E = 0) and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fista import centre, fista
from .operator import ConvOperator

__all__ = ["MapFit", "fit_map", "merge_scatterers", "noise_scaled_sparsity", "live_slices"]

#: Default λ multiplier: λ = SPARSITY · σ_A · sqrt(2 ln N) (the universal threshold).
SPARSITY = 1.0
#: A group of active pixels is kept as a scatterer when its summed activation reaches
#: this fraction of the typical strong scatterer's (the median of the three strongest).
#: Chosen on the project's own instrument draws (scripts/scatterer_choice.py; never on a
#: validation set): real scatterers sat at 0.3–1 of it, the groups correlated noise and
#: kernel errors leave at 0.02–0.2.
SIGNIFICANCE = 0.2
#: Two scatterers whose activation peaks lie this many pixels apart or more (along either
#: axis) stay two, even where their ℓ1 blobs touch; a smooth kernel core spreads each
#: scatterer over a blob of 10–20 px, so neighbours 4–10 px apart joined into one group
#: and one of them was lost. Closer peaks are one scatterer (an oversampled map lights
#: 2–4 adjacent pixels of one). Chosen on own draws (scripts/scatterer_choice.py
#: --split, 42 maps): recall of the true scatterers 0.859 → 0.876 (mean), precision
#: 0.859 → 0.862; on no map fewer true scatterers found.
SEPARATION = 4


@dataclass
class MapFit:
    """Result of :func:`fit_map` (in the units of the observation it was given)."""

    kernel: np.ndarray  # (E, k, k): amplitude a_E times the unit-norm shape
    activation: np.ndarray  # (H, W) ≥ 0, mean of its active pixels 1
    amplitudes: np.ndarray  # (E,) signed
    residual: np.ndarray  # (E, H, W): observation − model, offsets removed
    relative_residual: float
    sparsity: float  # the absolute λ used
    source: str  # "fit" or "method" (whose activation was kept)
    unmerged: np.ndarray | None = None  # with merge: the ℓ1 activation before merging


def live_slices(observation: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """(E,) bool: slices that are not constant (std above ``rtol`` of the largest)."""
    std = observation.std(axis=(-2, -1))
    return std > rtol * max(float(std.max()), 1e-300)


def noise_scaled_sparsity(amplitudes: np.ndarray, noise: np.ndarray, n_pixels: int,
                          multiplier: float = SPARSITY) -> float:
    """λ = multiplier · σ_A · sqrt(2 ln N), σ_A = sqrt(Σ_E a_E² σ_E²).

    σ_A is the standard deviation of white noise seen through the (unit-norm, amplitude
    a_E) kernels, i.e. of Aᵀn; sqrt(2 ln N) is the largest such value expected among N
    pixels, so with ``multiplier`` 1 pure noise activates almost nothing.
    """
    sigma = float(np.sqrt(np.sum(np.asarray(amplitudes) ** 2 * np.asarray(noise) ** 2)))
    return multiplier * sigma * float(np.sqrt(2 * np.log(max(n_pixels, 2))))


def _amplitudes(op_unit: ConvOperator, x: np.ndarray, y: np.ndarray, mask=None):
    """Closed-form signed a_E minimising ‖M(a_E m_E + b_E − Y_E)‖², m_E = K̃_E ⊛ X."""
    m = centre(op_unit.forward(x).astype(float), mask)  # float32 FFTs, float64 sums
    yc = centre(y, mask)
    den = (m * m).sum(axis=(-2, -1))
    return np.where(den > 0, (m * yc).sum(axis=(-2, -1)) / np.maximum(den, 1e-300), 0.0)


def _residual(op_unit, amps, x, y, mask=None):
    """Model − data with optimal offsets, for amplitudes ``amps`` of the unit kernels."""
    return centre(amps[:, None, None] * op_unit.forward(x).astype(float) - y, mask)


def _initial_amplitudes(op_unit: ConvOperator, y: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Signs and sizes of a_E from per-energy matched filters, before X is known.

    Each slice's matched-filter response K̃_E ⋆ Y_E is ≈ a_E (K̃_E ⋆ K̃_E) ⊛ X; their
    correlation with the strongest slice's response gives the relative signs; the
    overall sign makes the strongest responses of the combined filter positive (X ≥ 0).
    """
    per = ConvOperator(op_unit.kernel[:, None], op_unit.shape, op_unit.grid)
    r = per.adjoint(y[:, None])  # (E, H, W)
    norms = np.sqrt((r**2).sum(axis=(-2, -1)))
    ref = int(np.argmax(norms * live))
    signs = np.sign((r * r[ref]).sum(axis=(-2, -1)))
    signs[signs == 0] = 1.0
    amps = signs * norms / max(norms[ref], 1e-300) * live
    combined = (amps[:, None, None] * r).sum(0)
    top = np.sort(np.abs(combined).ravel())[-max(5, combined.size // 200)]
    strongest = np.abs(combined) >= top
    if combined[strongest].sum() < 0:
        amps = -amps
    return amps


def merge_scatterers(activation: np.ndarray,
                     significance: float = SIGNIFICANCE,
                     separation: int | None = SEPARATION) -> np.ndarray:
    """One pixel per scatterer: each active pixel joins the basin of its activation peak
    (peaks at least ``separation`` px apart, within groups of adjacent active pixels), and
    each basin becomes its peak pixel carrying the basin's sum; basins weaker than
    ``significance`` times the median of the three strongest are dropped.

    On an oversampled, interpolated or lock-in-filtered map one scatterer lights two to
    four adjacent pixels, and correlated noise leaves many weak groups that a held-out
    score cannot tell from scatterers (the noise is smooth over a held-out block too).
    Two scatterers a few pixels apart share one group of active pixels; their two peaks
    keep them apart.

    Parameters
    ----------
    activation : (H, W) ndarray
        A non-negative activation.
    significance : float
        Fraction of the typical strong scatterer's summed activation a basin must reach.
    separation : int or None
        Least distance (px, along either axis) between two scatterers' peaks; None: each
        group of adjacent active pixels is one scatterer.

    Returns
    -------
    (H, W) ndarray
        The merged activation (zeros where nothing is active).
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    x = np.clip(np.asarray(activation, dtype=float), 0, None)
    out = np.zeros_like(x)
    active = x > 0
    groups, n = ndimage.label(active, structure=np.ones((3, 3), bool))
    if n == 0:
        return out
    if separation is None:
        peaks = np.zeros((0, 2), dtype=int)
    else:
        # one filter over the whole map (labels= loops over the groups in Python: ~1 s on
        # a dense 256² activation); a peak next to a stronger group may be lost to it
        peaks = peak_local_max(x, min_distance=max(int(separation) - 1, 1),
                               exclude_border=False)
    # every group keeps at least its strongest pixel (a flat group may show no peak)
    top = np.array(ndimage.maximum_position(x, groups, np.arange(1, n + 1))).reshape(-1, 2)
    missing = np.setdiff1d(np.arange(1, n + 1), groups[peaks[:, 0], peaks[:, 1]])
    peaks = np.concatenate([peaks.reshape(-1, 2), top[missing - 1]]).astype(int)
    markers = np.zeros(x.shape, dtype=int)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
    basins = watershed(-x, markers, mask=active, connectivity=2)
    total = ndimage.sum_labels(x, basins, np.arange(1, len(peaks) + 1))
    keep = total >= significance * float(np.median(np.sort(total)[::-1][:3]))
    out[peaks[keep, 0], peaks[keep, 1]] = total[keep]
    return out


def fit_map(observation: np.ndarray, kernel: np.ndarray, *, noise: np.ndarray,
            sparsity: float | None = None, support: np.ndarray | None = None,
            activation: np.ndarray | None = None, mask: np.ndarray | None = None,
            rounds: int = 3, num_iter: int = 60, merge: bool = False) -> MapFit:
    """Fit the shared activation and per-energy amplitudes of a kernel shape to a map.

    Parameters
    ----------
    observation : (E, H, W) ndarray
        Maps with their means removed.
    kernel : (E, k, k) ndarray
        Kernel shapes (any scale and sign per energy).
    noise : (E,) ndarray
        White-noise level per pixel of each slice (:func:`~.noise.noise_level`).
    sparsity : float, optional
        λ multiplier (default :data:`SPARSITY`); see :func:`noise_scaled_sparsity`.
    support : (H, W) bool ndarray, optional
        Where scatterers may sit (known positions).
    activation : (H, W) ndarray, optional
        The method's own activation: a start, and kept if it explains the map better.
    mask : (H, W) 0/1 ndarray, optional
        Pixels in the data term (cross-validation).
    rounds, num_iter : int
        Alternations of (X by FISTA, a by least squares), FISTA steps per round.
    merge : bool
        One pixel per scatterer and weak groups dropped (:func:`merge_scatterers`)
        before the debiasing refit; ignored with ``support`` (the positions are given).

    Returns
    -------
    MapFit
    """
    y = np.asarray(observation, dtype=float)
    e, h, w = y.shape
    live = live_slices(y)
    shape = np.asarray(kernel, dtype=float)
    norms = np.linalg.norm(shape, axis=(-2, -1))
    live = live & (norms > 0)
    unit = shape / np.maximum(norms, 1e-300)[:, None, None] * live[:, None, None]
    # the fit's FFTs in float32: 2–3× faster, and its scores move by ~1e-6
    unit32 = unit.astype(np.float32)
    op_unit = ConvOperator(unit32, (h, w))
    multiplier = SPARSITY if sparsity is None else float(sparsity)
    msk = None if mask is None else np.asarray(mask, dtype=float)

    amps = _initial_amplitudes(op_unit, y, live)
    x = None
    lam = 0.0
    for i in range(rounds):
        op = op_unit.with_kernel((amps[:, None, None] * unit).astype(np.float32))
        lam = noise_scaled_sparsity(amps, noise, h * w, multiplier)
        x = fista(op, y, sparsity=lam, num_iter=num_iter if i == 0 else num_iter // 2,
                  x0=x, support=support, mask=msk)
        if not np.any(x > 0):
            break
        amps = _amplitudes(op_unit, x, y, msk) * live
    merging = merge and support is None
    unmerged = None
    if merging and x is not None:
        unmerged = x
        x = merge_scatterers(x)
    if x is not None and np.any(x > 0):
        # debias: refit the amplitudes on the found support without the ℓ1 shrinkage
        op = op_unit.with_kernel((amps[:, None, None] * unit).astype(np.float32))
        x = fista(op, y, sparsity=0.0, num_iter=num_iter // 2, x0=x, support=x > 0,
                  mask=msk)
        amps = _amplitudes(op_unit, x, y, msk) * live
    else:
        x = np.zeros((h, w))
        amps = np.zeros(e)
    r = _residual(op_unit, amps, x, y, msk)
    source = "fit"
    if activation is not None and np.shape(activation) == (h, w) and np.any(activation > 0):
        xm = np.clip(np.asarray(activation, dtype=float), 0, None)
        xm = merge_scatterers(xm) if merging else xm
        am = _amplitudes(op_unit, xm, y, msk) * live
        rm = _residual(op_unit, am, xm, y, msk)
        if (rm**2).sum() < (r**2).sum():
            x, amps, r, source = xm, am, rm, "method"
    active = x > 0
    level = float(x[active].mean()) if active.any() else 1.0
    x, amps = x / level, amps * level
    yc = centre(y, msk)
    rel = float(np.linalg.norm(r) / max(np.linalg.norm(yc), 1e-300))
    # residual = data − model (r above is model − data)
    return MapFit(amps[:, None, None] * unit, x, amps, -r, rel, lam * level, source,
                  unmerged)
