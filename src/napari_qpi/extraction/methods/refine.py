"""Refine: sparse blind deconvolution started from the best available kernels.

The learned two-stage kernel and the power-spectrum kernel are good starting points of
different kinds: the network knows what physical kernels look like (phase, sign,
asymmetry) but may not know this map's physics; the power spectrum knows this map's
|K(q)| but nothing of its phase. Refine runs the SBD alternation (activation by the
shared FISTA, kernel by gradient steps on the sphere, :mod:`..sbd`) from both at once,
with few iterations because it starts near the answer, and fits the learned latent to
the map through the decoder (the prior as a regulariser, :mod:`.latent`); it keeps
whichever of the starts and their refinements best predicts held-out pixels of the map
(:func:`~..quality.cv_residual`): it never ends worse, by that measure, than where it
started, and on a map the prior does not know the data has the last word.
"""

from __future__ import annotations

import numpy as np

from ...progress import Progress
from ..registry import METHODS, MethodResult, Problem

#: SBD iterations of refine (phase I, phase II): few, since it starts near the answer.
PHASE_ITERS = (25, 15)


def candidates(problem: Problem):
    """Run two-stage and power; a dict name → MethodResult (the starts of refine).

    With an automatic window they estimate the largest window (it costs them nothing,
    and their tails may reach further than the estimate).
    """
    from dataclasses import replace

    from ..run import run_method

    big = replace(problem, kernel_size=problem.max_window or problem.kernel_size)
    out = {}
    for name in ("two-stage", "power"):  # (big shares problem.info)
        out[name] = yield from run_method(METHODS[name], big)
    return out


def score_all(problem: Problem, results: dict):
    """Cross-validated residual of every candidate kernel on the same held-out pixels;
    a generator of progress, one event per candidate."""
    from ..quality import problem_cv

    scores = {}
    for i, (name, r) in enumerate(results.items()):
        yield Progress("scoring candidates on held-out pixels", i, len(results))
        scores[name] = problem_cv(problem, r.kernel)
    return scores


def polish(problem: Problem, starts: dict, mask=None):
    """SBD from each given kernel (no random restarts); name → MethodResult.

    With ``mask`` the SBD never sees the held-out pixels, so that its cross-validated
    residual is as honest as that of a kernel that did not look at the map.
    """
    from ..sbd import iter_sbd
    from ..scale import center_window

    k = problem.kernel_size
    init = np.stack([center_window(np.asarray(r.kernel, float), k) for r in starts.values()])
    res = yield from iter_sbd(problem.observation, k, restarts=0, init_kernels=init,
                              num_iter=PHASE_ITERS[0], refine_iter=PHASE_ITERS[1],
                              rng=problem.rng, device=problem.device, mask=mask)
    return {f"refine ({name})": MethodResult(kern) for name, kern in zip(starts, res.kernels)}


def compete(problem: Problem):
    """Starts, their SBD refinement, and the CV score of each: (results, scores)."""
    from dataclasses import replace

    from ..quality import holdout_mask
    from .latent import best_view_fit

    results = yield from candidates(problem)
    train = holdout_mask(problem.observation.shape[-2:], problem.rng)
    big = replace(problem, kernel_size=problem.max_window or problem.kernel_size)
    fitted = None
    if problem.info.get("working_zoom", 1.0) == 1.0:  # the fit works at the map's scale
        # each fit starts from one view of the network: a latent and its own decoding
        fitted = yield from best_view_fit(big, train)
    results.update((yield from polish(problem, results, train)))
    scores = yield from score_all(problem, results)
    yield Progress("scoring candidates on held-out pixels", len(scores), len(scores))
    if fitted is not None:  # scored on the same held-out pixels when its view was chosen
        results["refine (latent)"], scores["refine (latent)"] = fitted
    return results, scores


def refine(problem: Problem):
    """The best of the learned and power kernels and their SBD refinement."""
    results, scores = yield from compete(problem)
    best = min(scores, key=scores.get)
    result = results[best]
    info = {**result.info, "refine_kept": best, "refine_cv": scores}
    # kernel, latent and uncertainty belong together: only learned kernels have them
    return MethodResult(result.kernel, result.activation, result.uncertainty, result.latent,
                        info)
