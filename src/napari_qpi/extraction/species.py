"""Several defect species in one map: one kernel stack and one scatterer map per species.

Real surfaces hold several kinds of defect, and one kernel fitted to all of them is a
blend that belongs to none. The model here is::

    Y_E ≈ Σ_t K_{t,E} ⊛ X_t + b_E,   X_t ≥ 0, one pixel per scatterer, one type per scatterer

fitted by :func:`fit_species` from the single-type result:

1. **Candidates.** The single-type kernel K and its negative, fitted as two types
   (:class:`~.operator.TypesOperator` and the one :func:`~.fista.fista`): scatterers of
   either sign, since a second species may scatter with the opposite phase.
2. **Grouping.** The observation's patch around each candidate (every energy, half the
   kernel window, unit norm, sign kept), grouped by k-means into N types
   (``scipy.cluster.vq.kmeans2``, k-means++ starts, the best of several).
3. **Alternation.** Each type's kernels given the activations, by least squares over the
   kernel windows of all types at once (conjugate gradients, a small ridge); then the
   activations given the kernels (the one FISTA, λ per type from the noise level), each
   type merged to one pixel per scatterer (:func:`~.fit.merge_scatterers`), a scatterer
   marked by two types within 2 px kept by the stronger, and the amplitudes refitted
   without shrinkage on what is left.
4. **The learned prior** (:func:`reread`, for learned methods): each species' kernel is
   read again by ``two-stage`` guided by that species' scatterers, on the map with the
   other species' patterns removed, and the activations and amplitudes refitted — a
   least-squares kernel from a few tens of scatterers fits the noise.

:func:`choose_types` picks N by held-out prediction: every N is fitted on the same
training pixels (kernels included, each read again by the learned prior, :func:`reread`)
and scored on the held-out blocks (:func:`~.quality.holdout_mask`); N grows while one
more species predicts them better by more than a margin, so a map of one species stays
at one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fista import centre, fista
from .fit import SIGNIFICANCE, merge_scatterers
from .operator import TypesOperator

__all__ = ["MAX_TYPES", "TYPES_MARGIN", "SpeciesFit", "check_types", "choose_types",
           "fit_species", "separate", "separation"]

#: Most species ``n_types="auto"`` tries.
MAX_TYPES = 4
#: One more species is kept while its held-out residual is lower by more than this
#: (relative) than the best so far; chosen on the project's own mixed and one-species
#: draws (scripts/species_choice.py), never on a validation set.
TYPES_MARGIN = 0.05
#: Two types' scatterers closer than this (px, square) are one scatterer.
EXCLUSION = 2
ROUNDS = 4


@dataclass(frozen=True)
class SpeciesFit:
    """Kernels and scatterer maps of N species fitted to a map (scaled units)."""

    kernels: np.ndarray  # (T, E, k, k)
    activations: np.ndarray  # (T, H, W) ≥ 0, one pixel per scatterer, mean active 1
    residual: np.ndarray  # (E, H, W): observation − model
    relative_residual: float
    cv_residual: float | None = None  # on held-out blocks, when fitted with a mask


def _lambda(kernels: np.ndarray, noise: np.ndarray, n_pixels: int) -> np.ndarray:
    """λ per type: the noise seen through each type's kernels, times sqrt(2 ln N) (as
    :func:`~.fit.noise_scaled_sparsity` for one type)."""
    norms2 = (kernels**2).sum(axis=(-2, -1))  # (T, E)
    return np.sqrt((norms2 * np.asarray(noise)[None] ** 2).sum(1)) * np.sqrt(
        2 * np.log(max(n_pixels, 2)))


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
    x = exclusive(np.stack([merge_scatterers(s) for s in x]))
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


def _shifted_patches(y: np.ndarray, positions: np.ndarray, radius: int) -> np.ndarray:
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


def _group(patches: np.ndarray, n: int, rng: int, tries: int = 8, iters: int = 20):
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


def candidates(y: np.ndarray, kernel: np.ndarray, noise: np.ndarray, mask=None):
    """Scatterer pixels of every species: (P, 2) positions and their strengths.

    Those the single-type kernel or its negative explains (a second species may scatter
    with the opposite phase), and the cores of what that fit leaves unexplained: the
    peaks of the residual's local energy away from them, where a species unlike the
    kernel sits (:func:`residual_peaks`).
    """
    pair = np.stack([kernel, -kernel])
    x = activations_given(y, pair, noise, mask=mask)
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
    resid = centre(y - TypesOperator(pair, y.shape[-2:]).forward(x), mask)
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


def fit_species(y: np.ndarray, kernel: np.ndarray, noise: np.ndarray, n: int, *,
                rng: int = 0, mask=None, rounds: int = ROUNDS) -> SpeciesFit | None:
    """N species' kernels and scatterer maps, started from a single-type kernel.

    Parameters
    ----------
    y : (E, H, W) ndarray
        Mean-free observation.
    kernel : (E, k, k) ndarray
        The single-type kernel (its window is every type's).
    noise : (E,) ndarray
        Noise level per slice.
    n : int
        Number of species.
    rng : int
        Seed of the grouping.
    mask : (H, W) 0/1 ndarray, optional
        Fit on these pixels only (cross-validation); the held-out residual is then
        reported.
    rounds : int
        Alternations of kernels and activations.

    Returns
    -------
    SpeciesFit or None
        None when the map does not hold ``n`` groups of scatterers (fewer candidates, or
        a type that empties).
    """
    kernel = np.asarray(kernel, float)
    size = kernel.shape[-1]
    if n == 1:
        x = activations_given(y, kernel[None], noise, mask=mask)
    else:
        pos, strength = candidates(y, kernel, noise, mask)
        if len(pos) < 2 * n:
            return None
        radius = max(3, size // 16)
        labels, shift = _group(_shifted_patches(y, pos, radius), n, rng)
        if labels is None:
            return None
        # each candidate moved to the site its group's centroid is centred on
        side = 2 * radius + 1
        moved = pos + np.stack([shift // side - radius, shift % side - radius], 1)
        moved = np.clip(moved, 0, np.array(y.shape[-2:]) - 1)
        x = np.zeros((n, *y.shape[-2:]))
        x[labels, moved[:, 0], moved[:, 1]] = strength
    k = None
    for _ in range(int(rounds)):
        k = kernels_given(y, x, size, mask=mask, k0=k)
        x = activations_given(y, k, noise, mask=mask, x0=x)
        if not all(s.any() for s in x):
            return None
    return _finished(y, k, x, mask)


def _amplitudes(y: np.ndarray, kernels: np.ndarray, x: np.ndarray, mask=None) -> np.ndarray:
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


def reread(y: np.ndarray, fit: SpeciesFit, noise: np.ndarray, *, mask=None,
           weights: str = "default", device: str = "cpu", rng: int = 0) -> SpeciesFit:
    """Each species' kernel read again by the learned prior (``two-stage``, guided by the
    species' own scatterers) on the map with the other species' fitted patterns removed,
    then the activations and amplitudes refitted. A least-squares kernel of k² pixels
    per energy from a few tens of scatterers fits the noise; the learned prior does not.
    With ``mask``, everything is fitted on those pixels (the network sees the others as
    zeros) and the held-out residual is reported.
    """
    from ..progress import drain
    from .registry import Problem, get_method
    from .run import run_method

    spec = get_method("two-stage")
    k = fit.kernels.shape[-1]
    parts = TypesOperator(fit.kernels, y.shape[-2:]).op.forward(fit.activations)
    kernels = []
    for t in range(len(fit.kernels)):
        peeled = centre(y - (parts.sum(0) - parts[t]), mask)
        pos = np.argwhere(fit.activations[t] > 0)
        problem = Problem(peeled, pos, k, device=device, noise=float(np.mean(noise)),
                          weights=weights, rng=rng)
        kern = np.asarray(drain(run_method(spec, problem)).kernel, float)
        kernels.append(kern / np.maximum(np.linalg.norm(kern, axis=(-2, -1),
                                                        keepdims=True), 1e-300))
    unit = np.stack(kernels)
    kern = unit * _amplitudes(y, unit, fit.activations, mask)[..., None, None]
    x = activations_given(y, kern, noise, x0=fit.activations, mask=mask)
    if not all(s.any() for s in x):
        return fit
    kern = unit * _amplitudes(y, unit, x, mask)[..., None, None]
    return _finished(y, kern, x, mask)


def _finished(y: np.ndarray, k: np.ndarray, x: np.ndarray, mask=None) -> SpeciesFit:
    """The fit with each species' active pixels averaging 1, its residual and scores."""
    level = np.array([s[s > 0].mean() for s in x])
    x, k = x / level[:, None, None], k * level[:, None, None, None]
    pred = TypesOperator(k, y.shape[-2:]).forward(x)
    resid = centre(y - pred, mask)
    rel = float(np.linalg.norm(resid) / max(np.linalg.norm(centre(y, mask)), 1e-300))
    cv = None
    if mask is not None:
        held = 1.0 - np.asarray(mask, float)
        cv = float(np.linalg.norm(centre(y - pred, held)) /
                   max(np.linalg.norm(centre(y, held)), 1e-300))
    return SpeciesFit(k, x, centre(y - pred), rel, cv)


def choose_types(y: np.ndarray, kernel: np.ndarray, noise: np.ndarray, *, rng: int = 0,
                 max_types: int = MAX_TYPES, margin: float = TYPES_MARGIN,
                 learned: bool = True, weights: str = "default", device: str = "cpu"):
    """The number of species that predicts held-out blocks best, with a margin.

    Returns
    -------
    n : int
    scores : dict
        N → held-out residual (NaN where N groups could not be fitted).
    """
    from .quality import holdout_mask

    train = holdout_mask(y.shape[-2:], rng)
    opts = {"rng": rng, "learned": learned, "weights": weights, "device": device}
    scores = {1: held_out(y, kernel, noise, 1, train, **opts)}
    best = 1
    # grow while one more species predicts held-out blocks clearly better
    for n in range(2, int(max_types) + 1):
        scores[n] = held_out(y, kernel, noise, n, train, **opts)
        if not (np.isfinite(scores[n]) and scores[n] < (1 - margin) * scores[best]):
            break
        best = n
    return best, scores


def held_out(y, kernel, noise, n, train, *, rng=0, learned=True, weights="default",
             device="cpu") -> float:
    """Held-out residual of ``n`` species fitted on the ``train`` pixels (NaN when the map
    does not hold ``n`` groups), with the learned re-reading when ``learned``."""
    fit = fit_species(y, kernel, noise, n, rng=rng, mask=train)
    if fit is not None and learned:
        fit = reread(y, fit, noise, mask=train, weights=weights, device=device, rng=rng)
    return np.nan if fit is None else float(fit.cv_residual)


def check_types(n_types) -> int | str:
    """``n_types`` as given to :func:`~.extract.extract`: a whole number 1–4 or "auto"."""
    if isinstance(n_types, str) and n_types == "auto":
        return n_types
    if (isinstance(n_types, (int, np.integer)) and not isinstance(n_types, bool)
            and 1 <= int(n_types) <= MAX_TYPES):
        return int(n_types)
    raise ValueError(f"n_types={n_types!r}: give the number of defect species, 1–"
                     f"{MAX_TYPES}, or 'auto' to choose it from the map")


def separation(kernels: np.ndarray) -> float:
    """How distinct the species' kernels are: 1 − the largest |correlation| between two
    of them (unit-norm stacks, aligned centres); 1 for orthogonal kernels, 0 for copies."""
    k = kernels.reshape(len(kernels), -1)
    k = k / np.maximum(np.linalg.norm(k, axis=1, keepdims=True), 1e-300)
    c = np.abs(k @ k.T)
    np.fill_diagonal(c, 0.0)
    return float(1.0 - c.max()) if len(k) > 1 else 1.0


def separate(y: np.ndarray, kernel: np.ndarray, noise: np.ndarray, n_types, *,
             rng: int = 0, learned: bool = True, weights: str = "default",
             device: str = "cpu"):
    """Several species from a single-type result, for :func:`~.extract.extract`.

    ``learned``: each species' kernel read again by the learned prior (:func:`reread`);
    ``weights`` and ``device`` are its.

    Returns
    -------
    fit : SpeciesFit or None
        None when one species is kept (``"auto"`` chose 1, or the map does not hold
        ``n_types`` groups).
    info : dict
        ``n_types`` (the number returned), ``types_cv`` (number → held-out residual;
        for a fixed number: 1 and it), and with several species ``scatterers_per_type``,
        ``explained_per_type`` (each species' share of the fitted model's power),
        ``separation`` (:func:`separation`) and ``warnings``.
    """
    from .quality import holdout_mask

    opts = {"learned": learned, "weights": weights, "device": device}
    if n_types == "auto":
        n, scores = choose_types(y, kernel, noise, rng=rng, **opts)
    else:
        n, train = int(n_types), holdout_mask(y.shape[-2:], rng)
        scores = {m: held_out(y, kernel, noise, m, train, rng=rng, **opts)
                  for m in sorted({1, n})}
    info = {"n_types": 1, "types_cv": {int(k): float(v) for k, v in scores.items()},
            "warnings": []}
    fit = None if n == 1 else fit_species(y, kernel, noise, n, rng=rng)
    if fit is not None and learned:
        fit = reread(y, fit, noise, weights=weights, device=device, rng=rng)
    if fit is None:
        if n_types != "auto" and n > 1:
            info["warnings"].append(
                f"n_types={n}: the map does not hold {n} separable groups of scatterers; "
                "one species was fitted")
        return None, info
    op = TypesOperator(fit.kernels, y.shape[-2:]).op  # per type, not summed
    power = (op.forward(fit.activations) ** 2).sum(axis=(1, 2, 3))
    info.update(n_types=n,
                scatterers_per_type=[int(np.count_nonzero(x)) for x in fit.activations],
                explained_per_type=[float(p) for p in power / max(power.sum(), 1e-300)],
                separation=separation(fit.kernels))
    if n_types != "auto" and scores.get(n, np.nan) >= scores.get(1, np.nan):
        info["warnings"].append(
            f"{n} species predict held-out pixels no better than one (held-out residual "
            f"{scores[n]:.3f} vs {scores[1]:.3f}): the map may hold one species")
    return fit, info
