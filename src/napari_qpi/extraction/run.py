"""One registered method on a prepared problem, at its working scale.

Below the methods and the driver alike: :func:`~.extract.iter_extract` runs the chosen
method through it, and a method that runs others (``refine``, ``auto``) does the same,
so no method imports the driver.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace

import numpy as np

from ..progress import Progress
from .registry import Method, MethodResult, Problem

__all__ = ["DEFAULT_KERNEL_SIZE", "run_method"]

#: The learned decoders' window and the largest automatic one.
DEFAULT_KERNEL_SIZE = 65


def run_method(method: Method, problem: Problem, *,
               working_scale: bool = True) -> Generator[Progress, None, MethodResult]:
    """Run one registered method on a prepared problem; kernel on the problem's pixels.

    A learned method also runs on the map resampled to its working scale when the map's
    mean QPI wavelength leaves the networks' comfort band (see :mod:`.scale`); its
    kernel is mapped back, and of the two kernels the one that predicts held-out pixels
    better is kept: a wavelength estimate on a noisy map may ask for a resampling that
    only blurs. The kept scale is the result's ``zoom`` (and, with the scores, its
    ``info["working_zoom"]``, ``info["working_zoom_cv"]``).
    """
    from .scale import kernel_to_map, resample, working_factor

    k = problem.kernel_size
    if method.max_kernel_size is not None and k > method.max_kernel_size:
        raise ValueError(f"kernel_size={k} is larger than method {method.name!r} can return "
                         f"({method.max_kernel_size} px); pass kernel_size ≤ "
                         f"{method.max_kernel_size} or use method='sbd'")
    fn = method.load()
    factor = working_factor(problem.observation) if (
        working_scale and method.working_scale) else 1.0
    native = yield from fn(problem)
    if method.working_scale:
        native = replace(native, zoom=1.0, info={**native.info, "working_zoom": 1.0})
    if abs(factor - 1) < 1e-3:
        return native
    work = resample(problem.observation, factor)
    work = work - work.mean(axis=(-2, -1), keepdims=True)
    pos = None if problem.positions is None else np.clip(
        problem.positions * factor, 0, np.array(work.shape[-2:]) - 1)
    sub = replace(problem, observation=work, positions=pos,
                  kernel_size=DEFAULT_KERNEL_SIZE if method.max_kernel_size else k,
                  max_window=None)
    result = yield from fn(sub)
    kernel = kernel_to_map(np.asarray(result.kernel), factor, k)
    unc = None if result.uncertainty is None else kernel_to_map(
        np.asarray(result.uncertainty), factor, k)
    scaled = MethodResult(kernel, None, unc, result.latent, result.info, zoom=factor)
    from .quality import problem_cv

    scores = {zoom: problem_cv(problem, r.kernel) for zoom, r in ((1.0, native),
                                                                  (factor, scaled))}
    # the map as it is unless the resampled reading is clearly better: interpolation
    # blurs, and on noisy maps the two scores differ by little more than their noise
    best = scaled if scores[factor] < scores[1.0] - problem.config.zoom_margin else native
    return replace(best, info={**best.info, "working_zoom": best.zoom,
                               "working_zoom_cv": scores})
