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

from dataclasses import dataclass, replace

import numpy as np

from ...progress import Progress
from ..registry import METHODS, MethodResult, Problem


@dataclass(frozen=True)
class Candidate:
    """One kernel ``refine`` and ``auto`` weigh, and its score.

    Attributes
    ----------
    name : str
        How it is reported: ``"two-stage"``, ``"power"``, ``"refine (two-stage)"`` (SBD
        started from the two-stage kernel), ``"refine (power)"``, ``"refine (latent)"``
        (the latent fit), ``"refine (latent sbd)"`` (SBD started from the latent fit).
    method : str
        The registered method whose work it is (``"refine"`` for the refinements).
    result : MethodResult
    cv_residual : float
        Residual on the held-out pixels (the same pixels for every candidate).
    """

    name: str
    method: str
    result: MethodResult
    cv_residual: float


def candidates(problem: Problem):
    """Run two-stage and power; a dict name → MethodResult (the starts of refine).

    With an automatic window they estimate the largest window (it costs them nothing,
    and their tails may reach further than the estimate).
    """
    from ..run import run_method

    out = {}
    for name in ("two-stage", "power"):
        out[name] = yield from run_method(METHODS[name], widest(problem))
    return out


def widest(problem: Problem) -> Problem:
    """The problem at the largest window an automatic choice allows (else its own)."""
    return replace(problem, kernel_size=problem.max_window or problem.kernel_size)


def score_all(problem: Problem, results: dict):
    """Cross-validated residual of every candidate kernel on the same held-out pixels;
    a generator of progress, one event per candidate."""
    from ..quality import problem_cv

    scores = {}
    for i, (name, r) in enumerate(results.items()):
        yield Progress("scoring candidates on held-out pixels", i, len(results))
        scores[name] = problem_cv(problem, r.kernel)
    return scores


def polish(problem: Problem, starts: dict, mask=None, sparsity: float | None = None):
    """SBD from each given kernel (no random restarts); ``"refine (name)"`` →
    MethodResult.

    With ``mask`` the SBD never sees the held-out pixels, so that its cross-validated
    residual is as honest as that of a kernel that did not look at the map. ``sparsity``:
    SBD's λ (default its own, from its white-noise estimate).
    """
    from ..sbd import iter_sbd
    from ..scale import center_window

    k = problem.kernel_size
    init = np.stack([center_window(np.asarray(r.kernel, float), k) for r in starts.values()])
    phase1, phase2 = problem.config.refine_iterations
    res = yield from iter_sbd(problem.observation, k, restarts=0, init_kernels=init,
                              num_iter=phase1, refine_iter=phase2,
                              rng=problem.rng, device=problem.device, mask=mask,
                              sparsity=sparsity)
    return {f"refine ({name})": MethodResult(kern) for name, kern in zip(starts, res.kernels)}


def compete(problem: Problem):
    """The starts, their SBD refinements, the latent fit and SBD from it, each scored on
    the same held-out pixels; a dict name → :class:`Candidate`."""
    from ..quality import holdout_mask
    from .latent import best_view_fit

    starts = yield from candidates(problem)
    train = holdout_mask(problem.observation.shape[-2:], problem.rng)
    fitted = None
    if starts["two-stage"].zoom == 1.0:  # the fit works at the map's own scale
        # each fit starts from one view of the network: a latent and its own decoding
        fitted = yield from best_view_fit(widest(problem), train)
    # the refinements at their starts' window: the automatic window estimate (the map's
    # autocorrelation) reads short on correlated noise (a median 0.7 of a pattern's
    # extent on own instrument draws, a sixth on some), and SBD in a 9-px window cannot
    # refine a 31-px pattern (docs/notes/2026-12-07-night-extent.md)
    # the starts' refinements with SBD's own λ, not the held-out one `sbd` uses
    # (classical.sbd_sparsity): a sparser refinement loses to the latent fit more often,
    # which own instrument draws favoured (6 up of 72) and own class draws (1 up, 2 down)
    # and the instrument validation maps (3 down, by 0.09–0.60) did not —
    # docs/notes/2026-12-08-lattice-waves.md §2
    results = {**starts, **(yield from polish(widest(problem), starts, train))}
    if fitted is not None:
        # SBD from the latent fit too, "refine (latent sbd)", with the held-out noise
        # level's λ: the latent fit keeps a pattern's geometry where the physics lies
        # outside the decoder's prior, not every caustic, and SBD lets the data sharpen
        # it. With SBD's own λ, which an oversampled map pushes to its floor, it lost to
        # the latent fit on 10 of 11 own stacks (docs/notes/2026-12-07-night-extent.md
        # §2); with this one `auto` kept it on 4 of 95 own draws, all up, none down
        # (docs/notes/2026-12-08-lattice-waves.md §5)
        from .classical import sbd_sparsity

        results.update((yield from polish(widest(problem), {"latent sbd": fitted[0]},
                                          train, sparsity=sbd_sparsity(problem))))
    scores = yield from score_all(problem, results)
    yield Progress("scoring candidates on held-out pixels", len(scores), len(scores))
    # a start is its own method's work; a refinement is refine's
    out = {name: Candidate(name, name if name in starts else "refine", r,
                           float(scores[name])) for name, r in results.items()}
    if fitted is not None:  # scored on the same held-out pixels when its view was chosen
        out["refine (latent)"] = Candidate("refine (latent)", "refine", fitted[0],
                                           float(fitted[1]))
    return out


def kept_info(kept: Candidate, candidates: dict) -> dict:
    """The kept candidate's info, with the working scale the network read the map at."""
    learned = candidates["two-stage"].result.info
    zoom = {k: learned[k] for k in ("working_zoom", "working_zoom_cv") if k in learned}
    return {**zoom, **kept.result.info}


def refine(problem: Problem):
    """The best of the learned and power kernels and their SBD refinement."""
    cands = yield from compete(problem)
    best = min(cands.values(), key=lambda c: c.cv_residual)
    info = {**kept_info(best, cands), "refine_kept": best.name,
            "refine_cv": {c.name: c.cv_residual for c in cands.values()}}
    # kernel, latent and uncertainty belong together: only learned kernels have them
    return replace(best.result, info=info)
