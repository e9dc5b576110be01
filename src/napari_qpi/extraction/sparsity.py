"""The activation's sparsity read from the map's own held-out pixels.

The ℓ1 weight of the activation fit follows a noise level σ_E per slice
(:func:`~.fit.noise_scaled_sparsity`). A noise level read from the power near the Nyquist
frequency (:func:`~.noise.noise_level`) is right for white noise and wrong for a real
instrument: an oversampled or interpolated map, the lock-in's low-pass along the fast
axis, 1/f noise and scan-line offsets leave almost no power near Nyquist, σ̂ → 0, and
the fit explains the map by putting a scatterer on almost every pixel.

Here σ is chosen instead by how well the fit predicts pixels it never saw: a short path of
noise levels, each a fraction of every slice's RMS, from sparse to dense; at each the
activation and amplitudes are fitted on the training pixels and the residual is measured
on held-out **blocks** (:func:`~.quality.holdout_mask`). Blocks, not single pixels: on a
map whose noise is correlated over a few pixels, a dense activation interpolates a lone
held-out pixel from its neighbours and would be rewarded for fitting the noise. Of the
levels, the sparsest whose held-out residual is within one standard error (at least
:data:`SPARSER_MARGIN`) of the best is kept — the lasso's one-standard-error rule: when two
sparsities predict equally well, the one with fewer scatterers is the one to believe. A
level whose activation marks more than :data:`MAX_DENSITY` of the pixels is never
chosen.

The spectral estimate is kept where the held-out pixels agree with it: when its held-out
residual is within one standard error of the best level's (on white-noise maps it is the
better-calibrated of the two). When no level predicts held-out pixels at all, the
sparsest level is used and ``source`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fista import centre
from .fit import fit_map
from .memo import content_memo
from .operator import ConvOperator

__all__ = ["NOISE_PATH", "SPARSER_MARGIN", "FirstNoise", "NoiseChoice", "choose_noise",
           "first_noise"]

#: Noise levels tried, as fractions of each slice's RMS, sparse to dense. For reference:
#: white noise at an SNR (power ratio) s is a fraction 1/sqrt(1 + s) of the RMS: 0.71 at
#: SNR 1, 0.41 at 5, 0.22 at 20.
NOISE_PATH = (0.85, 0.6, 0.42, 0.3, 0.21, 0.15, 0.1, 0.07)
#: Sparser levels tried only while every level of the path marks more than
#: :data:`MAX_DENSITY` of the pixels (an energy stack's shared activation: its matched
#: filter sums every energy's signal).
SPARSER = (1.2, 1.7, 2.4, 3.4, 4.8)
#: Most energies the path is fitted on (evenly spread over a longer stack).
PATH_ENERGIES = 8
#: Relative margin within which a sparser level is preferred to the best-predicting one;
#: chosen on the project's own simulator (white, 1/f and line noise; never on a
#: validation set).
SPARSER_MARGIN = 0.02
#: Largest active fraction a chosen level may give: point defects are sparse, and a map
#: that marks more of its pixels explains noise or a wrong kernel's errors (a dense
#: activation can rebuild a pattern the kernel gets wrong). Physicists' published fits
#: mark 1–3 %.
MAX_DENSITY = 0.05
#: The path stops once the held-out residual has risen this much (relative) above its
#: best: denser levels only fit more noise.
STOP_RISE = 0.08
#: A held-out residual this close to 1 means no level predicts held-out pixels: the
#: sparsest level is used.
UNINFORMATIVE = 0.98


@dataclass(frozen=True)
class NoiseChoice:
    """The noise level the held-out pixels chose.

    Attributes
    ----------
    noise : (E,) ndarray
        Noise level per slice, in the units of the observation.
    fraction : float
        The chosen fraction of each slice's RMS (NaN when the fallback was used).
    cv_residual : float
        Held-out residual at the chosen level.
    scores : dict
        Fraction → held-out residual along the path.
    source : str
        ``"held-out"``, ``"spectral"`` (the white-noise estimate, where the held-out
        pixels agree with it), ``"density cap"`` (every level that predicts as well as
        the best marks too many pixels: the densest under :data:`MAX_DENSITY`) or
        ``"uninformative"`` (no level predicts held-out pixels: the sparsest).
    """

    noise: np.ndarray
    fraction: float
    cv_residual: float
    scores: dict
    source: str


@content_memo()  # one run scores the kept kernel at one level up to three times
def heldout_blocks(y: np.ndarray, kernel: np.ndarray, noise: np.ndarray,
                   train: np.ndarray, *, multiplier: float | None = None,
                   support: np.ndarray | None = None, rounds: int = 2,
                   num_iter: int = 40, merge: bool = False):
    """Each held-out block's squared residual and squared (mean-free) observation, of a
    fit on ``train``; and the fit's active fraction. Two kernels scored on the same
    blocks can be compared block by block (a paired test).

    Returns
    -------
    num, den : (B,) ndarray
        Per held-out block (8-connected group of held-out pixels), summed over slices.
    dense : float
    """
    from scipy import ndimage

    from .quality import heldout_misfit

    fit = fit_map(y, kernel, noise=noise, sparsity=multiplier, support=support, mask=train,
                  rounds=rounds, num_iter=num_iter, merge=merge)
    pred = ConvOperator(fit.kernel, y.shape[-2:]).forward(fit.activation)
    held = 1.0 - train
    num = (heldout_misfit(y, pred, train) ** 2).sum(0)
    den = (centre(y, held) ** 2).sum(0)
    labels, n = ndimage.label(held > 0)
    idx = np.arange(1, n + 1)
    return (ndimage.sum_labels(num, labels, idx), ndimage.sum_labels(den, labels, idx),
            float(np.mean(fit.activation > 0)))


def heldout_residual(y: np.ndarray, kernel: np.ndarray, noise: np.ndarray,
                     train: np.ndarray, *, multiplier: float | None = None,
                     support: np.ndarray | None = None, rounds: int = 2,
                     num_iter: int = 40, with_error: bool = False, merge: bool = False):
    """‖held-out residual‖ / ‖held-out observation − its mean‖ of a fit on ``train``.

    With ``with_error``: (residual, its standard error), the error from the spread of
    the held-out blocks' contributions (a ratio estimator's delta method). ``merge`` as
    in :func:`~.fit.fit_map`.
    """
    nb, db, dense = heldout_blocks(y, kernel, noise, train, multiplier=multiplier,
                                   support=support, rounds=rounds, num_iter=num_iter,
                                   merge=merge)
    cv = float(np.sqrt(nb.sum() / max(db.sum(), 1e-300)))
    if not with_error:
        return cv
    n = len(nb)
    ratio = cv**2
    var = n / max(n - 1, 1) * float(((nb - ratio * db) ** 2).sum()) / max(db.sum(), 1e-300) ** 2
    return cv, float(np.sqrt(var) / max(2 * cv, 1e-300)), dense


def choose_noise(observation: np.ndarray, kernel: np.ndarray, *, spectral: np.ndarray,
                 rng=0, support: np.ndarray | None = None, path=NOISE_PATH,
                 margin: float = SPARSER_MARGIN,
                 max_density: float = MAX_DENSITY) -> NoiseChoice:
    """Noise level per slice that lets the kernel best predict held-out pixels.

    Parameters
    ----------
    observation : (E, H, W) ndarray
        Mean-removed maps.
    kernel : (E, k, k) ndarray
        The kernel shape the activation is fitted with.
    spectral : (E,) ndarray
        The spectral (white-noise) estimate, the fallback.
    rng : int
        Seed of the held-out blocks (the same as every other score of the run).
    support : (H, W) bool ndarray, optional
        Where scatterers may sit (known positions).
    path : sequence of float
        Noise levels tried, as fractions of each slice's RMS, sparse to dense.
    margin : float
        A sparser level within this relative margin of the best is preferred.
    max_density : float
        Largest fraction of pixels the activation may mark (fitted on the training
        pixels); denser levels are not chosen.

    Returns
    -------
    NoiseChoice
    """
    from .quality import holdout_mask

    y_all = np.asarray(observation, dtype=float)
    rms_all = np.sqrt((y_all**2).mean(axis=(-2, -1)))
    spectral_all = np.asarray(spectral, float)
    # a long stack: the level (one fraction of every slice's RMS) is chosen on a few
    # evenly spread slices with signal, so the path costs the same for 8 or 200 energies
    live = np.nonzero(rms_all > 0)[0]
    pick = live[np.unique(np.linspace(0, len(live) - 1, min(len(live), PATH_ENERGIES))
                          .round().astype(int))] if len(live) else np.arange(len(y_all))
    y, rms, spectral = y_all[pick], rms_all[pick], spectral_all[pick]
    kernel = np.asarray(kernel, dtype=float)[pick]
    train = holdout_mask(y.shape[-2:], rng)
    scores: dict[float, float] = {}
    errors: dict[float, float] = {}
    dense: dict[float, float] = {}
    for f in path:
        scores[float(f)], errors[float(f)], dense[float(f)] = heldout_residual(
            y, kernel, f * rms, train, support=support, with_error=True)
        if scores[float(f)] > min(scores.values()) * (1 + STOP_RISE):
            break
    for f in SPARSER:  # a stack's shared activation can stay dense even at the RMS
        if min(dense.values()) <= max_density:
            break
        scores[float(f)], errors[float(f)], dense[float(f)] = heldout_residual(
            y, kernel, f * rms, train, support=support, with_error=True)
    best_f = min(scores, key=scores.get)
    best = scores[best_f]
    if best >= UNINFORMATIVE:  # nothing predicts: the sparsest level, not a guess at σ
        first = float(path[0])
        return NoiseChoice(first * rms_all, first, scores[first], scores, "uninformative")
    # one standard error (and at least the margin) above the best: as good
    bound = best + max(errors[best_f], margin * best)
    # the white-noise estimate where the held-out pixels agree with it
    ok = {f: v for f, v in scores.items() if dense[f] <= max_density} or {
        max(scores): scores[max(scores)]}
    spec_cv, _, spec_dense = heldout_residual(y, kernel, spectral, train, support=support,
                                              with_error=True)
    if spec_cv <= bound and spec_dense <= max_density:
        frac = float(np.sqrt(np.mean(spectral**2) / np.mean(rms**2)))
        return NoiseChoice(spectral_all, frac, spec_cv, {**scores, "spectral": spec_cv},
                           "spectral")
    within = [f for f, s in ok.items() if s <= bound]
    if within:
        chosen = max(within)  # the sparsest
        return NoiseChoice(chosen * rms_all, chosen, scores[chosen], scores, "held-out")
    # every level as good as the best marks more than max_density of the pixels: the
    # densest level under it
    chosen = min(ok, key=lambda f: (dense[f] > max_density, f))
    return NoiseChoice(chosen * rms_all, chosen, scores[chosen], scores, "density cap")


@dataclass(frozen=True)
class FirstNoise:
    """The noise level read with the power kernel: the kernel, the level, the choice."""

    kernel: np.ndarray
    noise: np.ndarray
    choice: object  # sparsity.NoiseChoice


def first_noise(y: np.ndarray, spectral: np.ndarray, kernel_size: int, positions,
                rng: int):
    """The noise level the methods work with, read from held-out pixels with the
    power-spectrum kernel (cheap, and blind to the method to come); see
    :mod:`.sparsity`."""
    from .fista import support_mask
    from .methods.power import power_kernel

    support = None if positions is None else support_mask(positions, y.shape[-2:])
    kernel = power_kernel(y, kernel_size)
    choice = choose_noise(y, kernel, spectral=spectral, rng=rng, support=support)
    return FirstNoise(kernel, choice.noise, choice)
