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
   type merged to one pixel per scatterer (:func:`~.fit.merge_scatterers`, each group of
   adjacent active pixels whole), a scatterer marked by two types within 2 px kept by
   the stronger, and the amplitudes refitted without shrinkage on what is left.
4. **The learned prior** (:func:`reread`, for learned methods): each species' kernel is
   read again by ``two-stage`` guided by that species' scatterers, on the map with the
   other species' patterns removed, and the activations and amplitudes refitted — a
   least-squares kernel from a few tens of scatterers fits the noise.

:func:`choose_types` picks N by held-out prediction: for every N the species' kernels
(fitted to the map, each read again by the learned prior, :func:`reread`) predict the
held-out blocks (:func:`~.quality.holdout_mask`, averaged over :data:`TYPES_DRAWS` draws
of the blocks) from scatterer maps fitted on the other pixels, as every kernel of the
package is scored; N grows while one more species
predicts them better by more than a margin, so a map of one species stays at one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fista import centre
from .operator import TypesOperator
from .species_start import candidates, group, shifted_patches
from .species_steps import activations_given, amplitudes_given, kernels_given

__all__ = ["MAX_TYPES", "TYPES_BLOCK", "TYPES_DRAWS", "TYPES_MARGIN", "SpeciesFit",
           "check_types", "choose_types", "fit_species", "heldout_scores", "separate",
           "separation", "type_holdouts"]

#: Most species ``n_types="auto"`` tries.
MAX_TYPES = 4
#: One more species is kept while its held-out residual is lower by more than this
#: (relative) than the best so far; chosen on the project's own mixed and one-species
#: draws (scripts/species_choice.py), never on a validation set.
TYPES_MARGIN = 0.05
#: The held-out residual of N species is the mean over this many draws of the held-out
#: blocks: one draw's score moves by several % with where its blocks fall, as much as
#: the margin (chosen with the margin, same draws).
TYPES_DRAWS = 4
#: Side (px) of the held-out blocks the number of species is scored on: those of every
#: score (:data:`~.quality.BLOCK`); 4, 2 and 1 px, which leave a held-out scatterer's
#: core seen, typed more one-species draws as two (docs/notes/2026-12-06-species-count.md).
TYPES_BLOCK = 8
ROUNDS = 4


@dataclass(frozen=True)
class SpeciesFit:
    """Kernels and scatterer maps of N species fitted to a map (scaled units)."""

    kernels: np.ndarray  # (T, E, k, k)
    activations: np.ndarray  # (T, H, W) ≥ 0, one pixel per scatterer, mean active 1
    residual: np.ndarray  # (E, H, W): observation − model
    relative_residual: float


def fit_species(y: np.ndarray, kernel: np.ndarray, noise: np.ndarray, n: int, *,
                rng: int = 0, rounds: int = ROUNDS) -> SpeciesFit | None:
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
        x = activations_given(y, kernel[None], noise)
    else:
        pos, strength = candidates(y, kernel, noise)
        if len(pos) < 2 * n:
            return None
        radius = max(3, size // 16)
        labels, shift = group(shifted_patches(y, pos, radius), n, rng)
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
        k = kernels_given(y, x, size, k0=k)
        x = activations_given(y, k, noise, x0=x)
        if not all(s.any() for s in x):
            return None
    return _finished(y, k, x)


def reread(y: np.ndarray, fit: SpeciesFit, noise: np.ndarray, *,
           weights: str = "default", device: str = "cpu", rng: int = 0) -> SpeciesFit:
    """Each species' kernel read again by the learned prior (``two-stage``, guided by the
    species' own scatterers) on the map with the other species' fitted patterns removed,
    then the activations and amplitudes refitted. A least-squares kernel of k² pixels
    per energy from a few tens of scatterers fits the noise; the learned prior does not.
    """
    from ..progress import drain
    from .registry import Problem, get_method
    from .run import run_method

    spec = get_method("two-stage")
    k = fit.kernels.shape[-1]
    parts = TypesOperator(fit.kernels, y.shape[-2:]).op.forward(fit.activations)
    kernels = []
    for t in range(len(fit.kernels)):
        peeled = centre(y - (parts.sum(0) - parts[t]))
        pos = np.argwhere(fit.activations[t] > 0)
        problem = Problem(peeled, pos, k, device=device, noise=float(np.mean(noise)),
                          weights=weights, rng=rng)
        kern = np.asarray(drain(run_method(spec, problem)).kernel, float)
        kernels.append(kern / np.maximum(np.linalg.norm(kern, axis=(-2, -1),
                                                        keepdims=True), 1e-300))
    unit = np.stack(kernels)
    kern = unit * amplitudes_given(y, unit, fit.activations)[..., None, None]
    x = activations_given(y, kern, noise, x0=fit.activations)
    if not all(s.any() for s in x):
        return fit
    kern = unit * amplitudes_given(y, unit, x)[..., None, None]
    return _finished(y, kern, x)


def _finished(y: np.ndarray, k: np.ndarray, x: np.ndarray) -> SpeciesFit:
    """The fit with each species' active pixels averaging 1, its residual and score."""
    level = np.array([s[s > 0].mean() for s in x])
    x, k = x / level[:, None, None], k * level[:, None, None, None]
    resid = centre(y - TypesOperator(k, y.shape[-2:]).forward(x))
    rel = float(np.linalg.norm(resid) / max(np.linalg.norm(centre(y)), 1e-300))
    return SpeciesFit(k, x, resid, rel)


def choose_types(y: np.ndarray, kernel: np.ndarray, noise: np.ndarray, *, rng: int = 0,
                 max_types: int = MAX_TYPES, margin: float = TYPES_MARGIN,
                 learned: bool = True, weights: str = "default", device: str = "cpu"):
    """The number of species that predicts held-out blocks best, with a margin.

    Returns
    -------
    n : int
    scores : dict
        N → held-out residual (NaN where N groups could not be fitted).
    fits : dict
        N → its :class:`SpeciesFit` (None where it could not be fitted).
    """
    trains = type_holdouts(y.shape[-2:], rng)
    opts = {"rng": rng, "learned": learned, "weights": weights, "device": device}
    scores, fits = {}, {}
    scores[1], fits[1] = held_out(y, kernel, noise, 1, trains, **opts)
    best = 1
    # grow while one more species predicts held-out blocks clearly better
    for n in range(2, int(max_types) + 1):
        scores[n], fits[n] = held_out(y, kernel, noise, n, trains, **opts)
        if not (np.isfinite(scores[n]) and scores[n] < (1 - margin) * scores[best]):
            break
        best = n
    return best, scores, fits


def type_holdouts(shape: tuple[int, int], rng: int = 0) -> list[np.ndarray]:
    """The :data:`TYPES_DRAWS` training masks (:func:`~.quality.holdout_mask`, blocks of
    :data:`TYPES_BLOCK` px) the number of species is scored on."""
    from .quality import holdout_mask

    return [holdout_mask(shape, int(rng) + d, block=TYPES_BLOCK)
            for d in range(TYPES_DRAWS)]


def held_out(y, kernel, noise, n, trains, *, rng=0, learned=True, weights="default",
             device="cpu") -> tuple[float, SpeciesFit | None]:
    """``n`` species fitted to the map, and how well their kernels predict the held-out
    blocks when the scatterer maps are fitted on the training pixels only — the score
    every kernel of the package is compared by (:mod:`.quality`) — averaged over the
    training masks ``trains``. NaN and None when the map does not hold ``n`` groups."""
    fit = fit_species(y, kernel, noise, n, rng=rng)
    if fit is not None and learned:
        fit = reread(y, fit, noise, weights=weights, device=device, rng=rng)
    if fit is None:
        return np.nan, None
    return float(np.mean(heldout_scores(y, fit, noise, trains))), fit


def heldout_scores(y: np.ndarray, fit: SpeciesFit, noise: np.ndarray,
                   trains: list[np.ndarray]) -> list[float]:
    """Per training mask: the relative residual on its held-out pixels of ``fit``'s
    kernels, with scatterer maps fitted on the training pixels only."""
    op, scores = TypesOperator(fit.kernels, y.shape[-2:]), []
    for train in trains:
        pred = op.forward(activations_given(y, fit.kernels, noise, mask=train))
        held = 1.0 - np.asarray(train, float)
        scores.append(float(np.linalg.norm(centre(y - pred, held)) /
                            max(np.linalg.norm(centre(y, held)), 1e-300)))
    return scores


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
    opts = {"learned": learned, "weights": weights, "device": device}
    if n_types == "auto":
        n, scores, fits = choose_types(y, kernel, noise, rng=rng, **opts)
    else:
        n, trains = int(n_types), type_holdouts(y.shape[-2:], rng)
        scored = {m: held_out(y, kernel, noise, m, trains, rng=rng, **opts)
                  for m in sorted({1, n})}
        scores = {m: v[0] for m, v in scored.items()}
        fits = {m: v[1] for m, v in scored.items()}
    info = {"n_types": 1, "types_cv": {int(k): float(v) for k, v in scores.items()},
            "warnings": []}
    fit = None if n == 1 else fits[n]
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
