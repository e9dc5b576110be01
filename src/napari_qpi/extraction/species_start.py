"""Where the species' scatterers are, and which belong together (:mod:`.species`).

:func:`candidates` finds one pixel per defect of any species from a single-type kernel;
:func:`group` sorts them into species by their core patches, letting each patch move by
up to the core radius (a multi-site defect's candidate may sit on any of its sites).
"""

from __future__ import annotations

import numpy as np

from .fista import centre
from .fit import SIGNIFICANCE
from .operator import TypesOperator
from .species_steps import activations_given

__all__ = ["candidates", "group", "residual_peaks", "shifted_patches", "suppress"]


def shifted_patches(y: np.ndarray, positions: np.ndarray, radius: int) -> np.ndarray:
    """(P, S, E·size²) patches of the observation around each position moved by every
    shift of at most ``radius`` px (S = (2·radius + 1)²): the defect's core and its first
    ripples (size 4·radius + 1, a Gaussian weight of width ``radius``, where species
    differ most and neighbours intrude least), unit norm."""
    size = 4 * radius + 1
    h = size // 2 + radius
    big = np.pad(y, ((0, 0), (h, h), (h, h)))
    shifts = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    out = np.stack([np.stack([big[:, r + radius + dy:r + radius + dy + size,
                                  c + radius + dx:c + radius + dx + size].ravel()
                              for dy, dx in shifts]) for r, c in positions])
    g = np.exp(-np.sum(np.mgrid[-(size // 2):size // 2 + 1,
                                -(size // 2):size // 2 + 1] ** 2, 0) / (2.0 * radius**2))
    out = out * np.tile(g.ravel(), y.shape[0])
    return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-300)


def group(patches: np.ndarray, n: int, rng: int, tries: int = 8, iters: int = 20):
    """Spherical k-means of shifted patches (P, S, D) into ``n`` groups, each patch taken
    at the shift that matches its group's centroid best: a multi-site defect's candidate
    may sit on any of its sites, so a plain k-means would split one species by site.
    Written here because no maintained clustering library offers shift-invariant
    k-means. The best of ``tries`` k-means++ starts (seeded).

    Returns
    -------
    labels : (P,) int ndarray, or None when no start keeps ``n`` non-empty groups
    shifts : (P,) int ndarray
        Index of each patch's shift.
    """
    p, n_shift, _ = patches.shape
    centre_shift = n_shift // 2
    gen = np.random.default_rng(rng)
    best, best_score = None, -np.inf
    for _ in range(tries):
        # k-means++ on the unshifted patches
        first = patches[:, centre_shift]
        chosen = [int(gen.integers(p))]
        for _ in range(1, n):
            d = 1 - np.max(first @ first[chosen].T, axis=1)
            d = np.clip(d, 0, None)
            chosen.append(int(gen.choice(p, p=d / d.sum())) if d.sum() > 0 else 0)
        cents = first[chosen]
        for _ in range(iters):
            dots = np.einsum("psd,nd->pns", patches, cents)  # (P, N, S)
            shift = dots.argmax(-1)  # best shift per patch and group
            score = dots.max(-1)
            labels = score.argmax(1)
            moved = patches[np.arange(p), shift[np.arange(p), labels]]
            new = np.stack([moved[labels == t].sum(0) for t in range(n)])
            norms = np.linalg.norm(new, axis=1, keepdims=True)
            if np.any(norms == 0):
                break
            cents = new / norms
        else:
            total = float(score[np.arange(p), labels].sum())
            if len(np.unique(labels)) == n and total > best_score:
                best = (labels, shift[np.arange(p), labels])
                best_score = total
    return (None, None) if best is None else best


def candidates(y: np.ndarray, kernel: np.ndarray, noise: np.ndarray):
    """Scatterer pixels of every species: (P, 2) positions and their strengths.

    Those the single-type kernel or its negative explains (a second species may scatter
    with the opposite phase), and the cores of what that fit leaves unexplained: the
    peaks of the residual's local energy away from them, where a species unlike the
    kernel sits (:func:`residual_peaks`).
    """
    pair = np.stack([kernel, -kernel])
    x = activations_given(y, pair, noise)
    both = x.max(0)
    pos = np.argwhere(both > 0)
    strength = both[tuple(pos.T)]
    if len(pos) == 0:
        return pos, strength
    # merge_scatterers' rule across both signs: the negative kernel also fits the
    # positive scatterers' oscillations weakly, and those are not scatterers
    keep = strength >= SIGNIFICANCE * float(np.median(np.sort(strength)[::-1][:3]))
    pos, strength = pos[keep], strength[keep]
    # one candidate per defect: the strongest within the kernel's core radius (a
    # multi-site defect lights each of its sites)
    radius = max(3, kernel.shape[-1] // 16)
    pos, strength = suppress(pos, strength, radius)
    resid = centre(y - TypesOperator(pair, y.shape[-2:]).forward(x))
    extra = residual_peaks(resid, y, pos, noise, radius)
    typical = float(np.median(strength))
    return (np.concatenate([pos, extra]),
            np.concatenate([strength, np.full(len(extra), typical)]))


def suppress(pos: np.ndarray, strength: np.ndarray, radius: int):
    """Keep a position only where no stronger one lies within ``radius`` px (square)."""
    order = np.argsort(strength)[::-1]
    kept: list[int] = []
    for i in order:
        if all(np.abs(pos[i] - pos[j]).max() > radius for j in kept):
            kept.append(int(i))
    kept = np.array(sorted(kept), int)
    return pos[kept], strength[kept]


def residual_peaks(resid: np.ndarray, y: np.ndarray, found: np.ndarray,
                   noise: np.ndarray, radius: int = 3) -> np.ndarray:
    """Pixels where the residual's local energy peaks away from the scatterers found:
    at least a quarter of the found scatterers' typical core energy in the data, and
    well above the noise's."""
    from scipy.ndimage import gaussian_filter, maximum_filter

    def energy(a):
        return sum(gaussian_filter(s**2, 1.5) for s in a)

    e, ey = energy(resid), energy(y)
    near = np.zeros(e.shape, bool)
    near[tuple(found.T)] = True
    near = maximum_filter(near, size=2 * radius + 1)
    core = float(np.median(ey[tuple(found.T)]))
    # smoothed squared white noise: mean Σσ², spread ≈ 0.3 Σσ² (≈ 28 pixels averaged)
    floor = 3.0 * float(np.sum(np.asarray(noise) ** 2))
    peak = (e == maximum_filter(e, size=2 * radius + 1)) & ~near
    peak &= e >= max(0.25 * core, floor)
    return np.argwhere(peak)
