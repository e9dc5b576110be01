"""After the method: the kernel window kept, the data-consistent fit, its scores and
warnings (steps 3 and 4 of :mod:`.extract`'s pipeline).

:func:`choose_window` keeps the method's kernel or a crop of it by held-out prediction;
:func:`finish` fits the shared activation and the amplitudes per energy to the map with
the noise level read from held-out pixels (:mod:`.sparsity`), moves the kernel behind
the lock-in's delay (:mod:`.lockin`), carries the scatterers' common sub-pixel offset
(:mod:`.subpixel`), and scores the fit without ground truth
(:mod:`.quality`), warning where it explains little, marks too many pixels or leaves a
structured residual.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from ..progress import Progress
from .registry import MethodResult, Problem
from .run import DEFAULT_KERNEL_SIZE
from .sparsity import FirstNoise

__all__ = ["CV_WARNING", "DENSITY_WARNING", "REPORTED_EXTENT_FRACTION", "STRUCTURE_WARNING",
           "choose_window", "finish", "is_structured", "kernel_extent", "reported_extent",
           "scatterer_count", "structure_warning", "window_warnings"]

#: Cross-validated residual above which a fit is reported as explaining little.
CV_WARNING = 0.9
#: Active fraction of the scatterer map above which a warning says it is implausible.
DENSITY_WARNING = 0.05
#: A warning says the residual holds a pattern when its structure
#: (:func:`~.quality.residual_structure`, a share of the *residual's* variance) weighted
#: by the residual's share of the map (``relative_residual``²) exceeds this: a small
#: misfit of a good kernel at high SNR, where the residual is small, is not a pattern a
#: user must act on. On own white-noise draws good fits (tail similarity ≥ 0.87) gave
#: 0.002–0.015 (their bare structure reached 0.11 at SNR 20), a lattice left in the map
#: 0.06–0.14, two defect species fitted as one 0.011–0.049
#: (docs/notes/2026-12-07-close-scatterers.md).
STRUCTURE_WARNING = 0.02
#: A defect's pattern reaches where its radial RMS last exceeds 5 % of its peak
#: (:func:`kernel_extent`). An extracted kernel's tail comes back weaker against its core
#: than the truth's (noise and the sparse fit sharpen the core, the prior damps the
#: tail): read at 5 %, `auto`'s kernels reached 0.79–0.89 of the true extent (median) on
#: own instrument and class draws. :func:`reported_extent` reads them at 3 % once the
#: kernel's own noise floor is taken off, which matched the true 5 % extent there (median
#: 0.90–1.03, within ±30 % on 53 of 70 maps and stacks against 48; seeds 43 and 44, never
#: a validation set; docs/notes/2026-12-07-night-extent.md).
REPORTED_EXTENT_FRACTION = 0.03


def is_structured(structure: float, relative_residual: float) -> bool:
    """Whether a residual's structure warrants the warning (:data:`STRUCTURE_WARNING`)."""
    return structure * relative_residual**2 > STRUCTURE_WARNING


def choose_window(y: np.ndarray, result: MethodResult, problem: Problem, estimate: int,
                  sparsity: float | None) -> Generator[Progress, None, MethodResult]:
    """Keep a kernel wider than the estimated window, or a crop of it, by cross-validation.

    A short ladder of windows — the estimate, the midpoint, the kernel's own width — is
    scored by how well each predicts held-out pixels. The estimate says where the map's
    own signal ends, but on an instrument's map (1/f noise, a lattice) it can fall short;
    the widest window is kept unless a crop predicts held-out pixels clearly better (by
    more than ``problem.config.window_margin``): the tail carries little of the kernel's
    energy but most of its physics.
    """
    from .quality import problem_cv
    from .scale import center_window

    kernel = np.asarray(result.kernel, dtype=float)
    full = int(kernel.shape[-1])
    if full <= estimate:
        return result
    mid = 2 * ((estimate + full) // 4) + 1
    ladder = sorted({int(estimate), mid, full})
    scores = {}
    for i, k in enumerate(ladder):
        yield Progress("choosing the kernel window on held-out pixels", i, len(ladder))
        scores[k] = problem_cv(problem, center_window(kernel, k), sparsity)
    yield Progress("choosing the kernel window on held-out pixels", len(ladder), len(ladder))
    info = {**result.info, "window_cv": scores, "window_estimate": int(estimate)}
    best = min(scores, key=scores.get)
    if best == full or scores[best] >= (1 - problem.config.window_margin) * scores[full]:
        return MethodResult(kernel, result.activation, result.uncertainty, result.latent,
                            info)
    unc = None if result.uncertainty is None else center_window(result.uncertainty, best)
    return MethodResult(center_window(kernel, best), result.activation, unc, result.latent,
                        info)


def window_warnings(estimate: int, largest: int, returned: int) -> list[str]:
    """Warnings when the automatic window sits on one of its bounds."""
    from .window import MIN_WINDOW

    # returned: the window kept (sbd runs in a multiple of the estimate, under 2× it)
    if returned < 2 * MIN_WINDOW and estimate <= MIN_WINDOW:
        return [f"the automatic kernel window hit its lower bound ({MIN_WINDOW} px): the "
                "map's autocorrelation shows no tail; if the defects look larger, pass "
                "kernel_size"]
    if estimate >= largest and largest >= DEFAULT_KERNEL_SIZE:
        return [f"the kernel's signal reaches beyond the largest window ({largest} px): "
                "its tail is cut there"]
    return []


def kernel_extent(kernel: np.ndarray, fraction: float = 0.05) -> int:
    """Diameter (px) where the kernel's radial RMS (over energies) last exceeds
    ``fraction`` of its peak: how far the defect's pattern reaches inside its window."""
    return _reach(_radial(kernel)[0], fraction)


def reported_extent(kernel: np.ndarray, fraction: float = REPORTED_EXTENT_FRACTION) -> int:
    """Diameter (px) the extracted pattern reaches: :func:`kernel_extent` at ``fraction``
    (see :data:`REPORTED_EXTENT_FRACTION`) of the radial RMS after the kernel's noise
    floor is taken off in quadrature. The floor is the RMS of the window's corners,
    beyond the largest ring: a kernel read from noisy data (Wiener, SBD) carries noise
    there, which at 3 % of the peak would otherwise reach the window's edge."""
    prof, floor = _radial(kernel)
    return _reach(np.sqrt(np.clip(prof**2 - floor, 0.0, None)), fraction)


def _radial(kernel: np.ndarray) -> tuple[np.ndarray, float]:
    """Radial RMS profile of a kernel (RMS over energies, then over rings of radius 0 to
    half the window) and the mean square of the window's corners beyond that radius."""
    from .window import ring_rms

    k = np.asarray(kernel, dtype=float).reshape(-1, *np.shape(kernel)[-2:])
    amp = np.sqrt((k**2).mean(0))
    half = amp.shape[-1] // 2
    yy, xx = np.mgrid[: amp.shape[-2], : amp.shape[-1]] - half
    corners = np.hypot(yy, xx) > half + 0.5
    floor = float((amp[corners] ** 2).mean()) if corners.any() else 0.0
    return ring_rms(amp, half), floor


def _reach(profile: np.ndarray, fraction: float) -> int:
    """Diameter (px) of the last ring whose value exceeds ``fraction`` of the peak."""
    above = np.nonzero(profile > fraction * profile.max())[0] if profile.max() > 0 else [0]
    return int(2 * above[-1] + 1)


def scatterer_count(activation: np.ndarray) -> int:
    """Distinct scatterers in an activation: its connected groups of active pixels (8
    neighbours), so a scatterer spread over adjacent pixels counts once."""
    from scipy import ndimage

    return int(ndimage.label(activation > 0, structure=np.ones((3, 3), bool))[1])


def structure_warning(structure: float) -> str:
    """The warning for a structured residual (:func:`~.quality.residual_structure`)."""
    return (f"the residual is structured (its autocorrelation at 4–16 px is {structure:.2f}; "
            "noise gives ≈ 0.01): the kernel leaves a pattern unexplained (a second defect "
            "kind: try n_types='auto'; a lattice; 1/f noise)")


#: Progress events of :func:`finish` (a step of a large grid runs for seconds).
STEPS = 5


def finish(y: np.ndarray, result: MethodResult, problem: Problem, *,
           sparsity: float | None = None,
           spectral: np.ndarray | None = None,
           known: FirstNoise | None = None) -> Generator[Progress, None, dict]:
    """Data-consistent fit of a method's kernel and its scores (see the module notes).

    ``spectral``: the white-noise estimate per slice (:func:`~.noise.noise_level`), used
    where the held-out pixels agree with it (:mod:`.sparsity`). ``known``: the level
    already read for a kernel (:func:`first_noise`), reused when it is this one (the
    power method's), since the same kernel, pixels and seed choose the same level.
    """
    from .fista import centre, support_mask
    from .fit import fit_map
    from .lockin import POLE_FLOOR, lockin_delay, lockin_pole
    from .quality import cv_residual, residual_structure, whiteness
    from .sparsity import choose_noise
    from .subpixel import iter_centre_subpixel, shift_kernel

    yield Progress("reading the noise level from held-out pixels", 0, STEPS)
    support = None if problem.positions is None else support_mask(problem.positions,
                                                                   y.shape[-2:])
    kernel = np.asarray(result.kernel, dtype=float)
    # the level the final kernel predicts held-out pixels best with (the methods worked
    # with the power kernel's); a given sparsity multiplies it
    if known is not None and known.kernel.shape == kernel.shape and np.array_equal(
            known.kernel, kernel):
        chosen = known.choice
    else:
        chosen = choose_noise(y, kernel, spectral=problem.noise if spectral is None
                              else spectral, rng=problem.rng, support=support)
    yield Progress("fitting the activation and amplitudes", 1, STEPS)
    # with the sparsity read from the data: one pixel per scatterer, weak groups dropped
    # (fit.merge_scatterers); a sparsity the user gives gets the ℓ1 fit as it is. The
    # scores below are those of the returned activation.
    merge = sparsity is None
    fit = fit_map(y, kernel, noise=chosen.noise, sparsity=sparsity, support=support,
                  activation=result.activation, merge=merge)
    # the scatterers behind their patterns' lock-in delay (.lockin); with known
    # positions the kernel is centred on them already
    pole = lockin_pole(fit.residual)
    delay = lockin_delay(kernel, pole) if support is None and pole >= POLE_FLOOR else 0.0
    if delay:
        kernel = shift_kernel(kernel, (0.0, delay))
        fit = fit_map(y, kernel, noise=chosen.noise, sparsity=sparsity, merge=merge)
    yield Progress("scoring the kernel on held-out pixels", 2, STEPS)
    cv = cv_residual(y, kernel, noise=chosen.noise, sparsity=sparsity, support=support,
                     rng=problem.rng, merge=merge)
    sub = None
    if merge and support is None:
        # the scatterers' common sub-pixel offset, carried by the kernel (.subpixel)
        yield Progress("centring the scatterers to a fraction of a pixel", 3, STEPS)
        # one event per fit (seconds each on a large grid)
        fit, cv, sub = yield from iter_centre_subpixel(y, fit, cv, noise=chosen.noise,
                                                       rng=problem.rng,
                                                       activation=None if delay
                                                       else result.activation)
    yield Progress("checking the residual", 4, STEPS)
    per = np.linalg.norm(fit.residual, axis=(-2, -1)) / np.maximum(
        np.linalg.norm(centre(y), axis=(-2, -1)), 1e-300)
    warnings = []
    if cv > CV_WARNING:
        warnings.append(f"the kernel explains little of the map (cross-validated residual "
                        f"{cv:.2f}; 1 = no better than nothing): treat it with caution")
    density = float(np.mean(fit.activation > 0))
    # what a kernel of zero width (each pixel its own scatterer) leaves at the same λ: a
    # residual bought by a dense activation is no better than this
    zero = fit_map(y, np.ones((len(y), 1, 1)), noise=chosen.noise, sparsity=sparsity)
    white = whiteness(fit.residual)
    structure = residual_structure(fit.residual)
    if density > DENSITY_WARNING:
        warnings.append(f"the scatterer map marks {100 * density:.0f} % of all pixels: a "
                        "map that dense explains noise, not scatterers; check the "
                        "preprocessing (lines, background, lattice) or raise sparsity")
    if is_structured(structure, fit.relative_residual):
        warnings.append(structure_warning(structure))
    info = {"relative_residual": fit.relative_residual, "cv_residual": cv,
            "relative_residual_zero_width": zero.relative_residual,
            "whiteness": white, "residual_structure": structure,
            "active_fraction": density,
            "scatterers_found": scatterer_count(fit.activation),
            "kernel_extent": reported_extent(fit.kernel),
            "per_energy_residual": [float(v) for v in per], "sparsity": fit.sparsity,
            "amplitudes": [float(a) for a in fit.amplitudes], "activation_source": fit.source,
            "subpixel_offset": None if sub is None or not sub.kept else sub.offset,
            "subpixel_cv": None if sub is None else {
                f"{dy:g},{dx:g}": float(v) for (dy, dx), v in sub.scores.items()},
            "subpixel_gain": None if sub is None else {
                f"{dy:g},{dx:g}": float(v) for (dy, dx), v in sub.gains.items()},
            "lockin_pole": pole, "lockin_delay": delay,
            "noise": chosen.noise, "noise_source": chosen.source,
            "noise_fraction": chosen.fraction,
            "noise_path_cv": {k if isinstance(k, str) else f"{k:.2f}": float(v)
                              for k, v in chosen.scores.items()},
            "warnings": warnings}
    return {"kernel": fit.kernel, "activation": fit.activation, "residual": fit.residual,
            "info": info}
