"""The scatterers' common sub-pixel offset, carried by the kernel.

A scatterer map of one pixel per scatterer (:func:`~.fit.merge_scatterers`) puts every
scatterer on a pixel, but on an interpolated map the scatterers can all sit between
pixels: a 2× resize that aligns pixel areas (what image resizers and much acquisition
software do) puts each coarse pixel half-way between two fine ones, and the lock-in's
delay moves every pattern along the fast axis by a fraction of a pixel. A kernel centred
on a pixel then fits each scatterer half a pixel off, and the one-pixel map lands on
either neighbour at random, which blurs the kernel's oscillations.

So the kernel is also tried shifted by half a pixel along each axis and both — a Fourier
shift, exact for a band-limited pattern — each scored on the same held-out blocks as the
unshifted one (the merged fit's held-out residual, :mod:`.quality`). The shift that
gains most is kept when its gain, block by block, exceeds :data:`Z` standard errors: a
single map's held-out residual moves by a few per cent between nearby kernels, and only a
consistent gain says the scatterers share an offset. Scatterers on pixels, or on random
sub-pixel sites (a lattice incommensurate with the pixels), keep the kernel as it was.

The offset cannot be read from the ℓ1 activation instead (the centroid of each group of
active pixels): on instrument maps a scatterer's group spans tens of pixels and the
groups' centroids disagree (docs/notes/2026-12-06-subpixel.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OFFSETS", "SubpixelChoice", "centre_subpixel", "iter_centre_subpixel",
           "shift_kernel"]

LABEL = "centring the scatterers to a fraction of a pixel"

#: The shifts tried (dy, dx), px.
OFFSETS = ((0.0, 0.5), (0.5, 0.0), (0.5, 0.5))
#: Standard errors a shift must gain to be kept (see :func:`centre_subpixel`): one, the
#: rule the sparsity uses too; chosen on own draws (scripts/subpixel_choice.py).
Z = 1.0


@dataclass(frozen=True)
class SubpixelChoice:
    """The offset kept and the held-out residual of every offset tried."""

    offset: tuple[float, float]  # (dy, dx) px; (0, 0): the kernel as it was
    scores: dict  # offset → held-out residual (merged fit)
    gains: dict  # offset → its block-by-block gain over the unshifted kernel, in SEs
    kept: bool


def shift_kernel(kernel: np.ndarray, offset) -> np.ndarray:
    """Each (k, k) slice moved by ``offset`` = (dy, dx) px, a Fourier (sinc) shift.

    The window is zero-padded by a quarter of its width first so the shift does not wrap
    the tail from one edge to the other.
    """
    from scipy import ndimage

    k = np.asarray(kernel, dtype=float)
    pad = max(2, k.shape[-1] // 4)
    big = np.pad(k, [(0, 0)] * (k.ndim - 2) + [(pad, pad), (pad, pad)])
    spec = np.fft.fft2(big)
    shifted = np.stack([ndimage.fourier_shift(s, tuple(offset))
                        for s in spec.reshape(-1, *spec.shape[-2:])])
    out = np.real(np.fft.ifft2(shifted)).reshape(big.shape)
    return out[..., pad:-pad, pad:-pad]


def centre_subpixel(y: np.ndarray, fit, cv: float, *, noise: np.ndarray, rng: int,
                    activation: np.ndarray | None = None, z: float = Z):
    """The merged fit's kernel, or the half-pixel shift of it that predicts held-out
    pixels best, when it does so better, block by block, by more than ``z`` standard
    errors.

    Parameters
    ----------
    y : (E, H, W) ndarray
        The mean-free observation.
    fit : :class:`~.fit.MapFit`
        A fit with ``merge=True``.
    cv : float
        That fit's held-out residual (merged).
    noise, rng, activation
        As given to that fit and score.
    z : float
        Standard errors (of the paired block differences) a shift must gain.

    Returns
    -------
    fit, cv, SubpixelChoice
        The kept fit and its score, and what was tried.
    """
    from ..progress import drain

    return drain(iter_centre_subpixel(y, fit, cv, noise=noise, rng=rng,
                                      activation=activation, z=z))


def iter_centre_subpixel(y: np.ndarray, fit, cv: float, *, noise: np.ndarray, rng: int,
                         activation: np.ndarray | None = None, z: float = Z):
    """:func:`centre_subpixel` as a generator of progress, one event per fit (each takes
    seconds on a large grid); returns the same triple."""
    from ..progress import Progress
    from .fit import fit_map
    from .quality import holdout_mask
    from .sparsity import heldout_blocks

    fits = len(OFFSETS) + 2  # the unshifted kernel, each shift, the kept shift's refit
    yield Progress(LABEL, 0, fits)
    train = holdout_mask(y.shape[-2:], rng)
    base, den, _ = heldout_blocks(y, fit.kernel, noise, train, merge=True)
    total = max(float(den.sum()), 1e-300)
    scores, gains = {(0.0, 0.0): cv}, {}
    for i, offset in enumerate(OFFSETS):
        yield Progress(LABEL, i + 1, fits)
        num = heldout_blocks(y, shift_kernel(fit.kernel, offset), noise, train,
                             merge=True)[0]
        d = num - base
        se = float(np.sqrt(len(d) * d.var(ddof=1))) if len(d) > 1 else np.inf
        scores[offset] = float(np.sqrt(max(base.sum() + d.sum(), 0.0) / total))
        gains[offset] = float(-d.sum() / se) if se > 0 else 0.0
    best = min(gains, key=scores.get)  # the lowest held-out residual, if it is sure
    if not gains[best] > z:
        return fit, cv, SubpixelChoice((0.0, 0.0), scores, gains, False)
    yield Progress(LABEL, fits - 1, fits)
    new = fit_map(y, shift_kernel(fit.kernel, best), noise=noise, activation=activation,
                  merge=True)
    return new, scores[best], SubpixelChoice(best, scores, gains, True)
