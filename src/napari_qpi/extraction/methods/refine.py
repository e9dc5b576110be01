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
        Residual on the held-out pixels (the same pixels and energies for every
        candidate).
    start : str or None
        The candidate an SBD refinement started from (None for the others).
    partial : bool
        The result holds only the energies the candidates were judged on (a long
        stack's SBD refinement, :func:`judging`); :func:`complete` runs it on them all.
    """

    name: str
    method: str
    result: MethodResult
    cv_residual: float
    start: str | None = None
    partial: bool = False


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
    """SBD from each given kernel (no random restarts); a dict of the same names →
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
    return {name: MethodResult(kern) for name, kern in zip(starts, res.kernels)}


def judging(problem: Problem):
    """The problem the candidates are judged on, and its energies (None: all).

    A stack of more energies than ``AutoConfig.view_energies`` is judged on that many,
    evenly spaced, as its latent fit chooses its view: the SBD refinements run and every
    candidate is scored there, and only the kept refinement runs on the whole stack
    (:func:`complete`). On a 64-energy grid the three refinements of every energy cost
    more than a third of ``auto``'s time, and all but one are thrown away.
    """
    from .views import energy_subset, subset_energies

    n, e = problem.config.view_energies, len(problem.observation)
    if n is None or e <= n:
        return problem, None
    return energy_subset(problem, n), subset_energies(e, n)


def refine_sparsity(start: str, problem: Problem) -> float | None:
    """SBD's λ for a refinement of ``start``: the held-out noise level's for the latent
    fit, SBD's own for the network's and the power kernels.

    The latent fit keeps a pattern's geometry where the physics lies outside the
    decoder's prior, not every caustic, and SBD from it lets the data sharpen it; with
    SBD's own λ, which an oversampled map pushes to its floor, it lost to the latent fit
    on 10 of 11 own stacks (docs/notes/2026-12-07-night-extent.md §2), with the held-out
    one `auto` kept it on 4 of 95 own draws, all up. The starts' refinements keep SBD's
    own λ: with the held-out one they lose to the latent fit more often, which own
    instrument draws favoured (6 up of 72) and own class draws (1 up, 2 down) and the
    instrument validation maps (3 down, by 0.09–0.60) did not
    (docs/notes/2026-12-08-lattice-waves.md §2, §5).
    """
    from .classical import sbd_sparsity

    return sbd_sparsity(problem) if start == LATENT else None


#: The latent fit's candidate name (the one ``auto`` prefers).
LATENT = "refine (latent)"


def compete(problem: Problem):
    """The starts, their SBD refinements, the latent fit and SBD from it, each scored on
    the same held-out pixels (of a long stack: on the energies of :func:`judging`); a
    dict name → :class:`Candidate`."""
    from ..quality import holdout_mask, problem_cv
    from .latent import best_view_fit

    starts = yield from candidates(problem)
    train = holdout_mask(problem.observation.shape[-2:], problem.rng)
    fitted = None
    if starts["two-stage"].zoom == 1.0:  # the fit works at the map's own scale
        # each fit starts from one view of the network: a latent and its own decoding
        fitted = yield from best_view_fit(widest(problem), train)
    judge, idx = judging(problem)

    def part(r: MethodResult) -> MethodResult:
        return r if idx is None else replace(r, kernel=np.asarray(r.kernel)[idx])

    # the refinements at their starts' window: the automatic window estimate (the map's
    # autocorrelation) reads short on correlated noise (a median 0.7 of a pattern's
    # extent on own instrument draws, a sixth on some), and SBD in a 9-px window cannot
    # refine a 31-px pattern (docs/notes/2026-12-07-night-extent.md)
    results = {name: part(r) for name, r in starts.items()}
    origin = {refine_name(name): name for name in (*starts, LATENT)}  # refinement → start
    # the starts' refinements in one batch (one λ); SBD from the latent fit with its own
    results.update((yield from polish(widest(judge), {refine_name(name): r for name, r
                                                      in results.items()}, train)))
    if fitted is not None:
        results.update((yield from polish(widest(judge),
                                          {refine_name(LATENT): part(fitted[0])}, train,
                                          sparsity=refine_sparsity(LATENT, judge))))
    scores = yield from score_all(judge, results)
    yield Progress("scoring candidates on held-out pixels", len(scores), len(scores))
    out = {}
    for name, r in results.items():
        if name in starts:  # a start is its own method's work, on every energy
            out[name] = Candidate(name, name, starts[name], float(scores[name]))
        else:
            out[name] = Candidate(name, "refine", r, float(scores[name]),
                                  start=origin[name], partial=idx is not None)
    if fitted is not None:  # scored on the held-out pixels when its view was chosen
        cv = fitted[1] if idx is None else problem_cv(judge, part(fitted[0]).kernel)
        out[LATENT] = Candidate(LATENT, "refine", fitted[0], float(cv))
    return out


def refine_name(start: str) -> str:
    """The name of SBD's refinement of ``start``: ``"refine (two-stage)"``,
    ``"refine (power)"``, ``"refine (latent sbd)"``."""
    return "refine (latent sbd)" if start == LATENT else f"refine ({start})"


def complete(problem: Problem, kept: Candidate, cands: dict):
    """The kept candidate on every energy: a refinement judged on a long stack's
    energies (:func:`judging`) runs again on the whole stack, from its start."""
    from ..quality import holdout_mask

    if not kept.partial:
        return kept
    train = holdout_mask(problem.observation.shape[-2:], problem.rng)
    full = yield from polish(widest(problem), {kept.name: cands[kept.start].result}, train,
                             sparsity=refine_sparsity(kept.start, problem))
    return replace(kept, result=full[kept.name], partial=False)


def kept_info(kept: Candidate, candidates: dict) -> dict:
    """The kept candidate's info, with the working scale the network read the map at."""
    learned = candidates["two-stage"].result.info
    zoom = {k: learned[k] for k in ("working_zoom", "working_zoom_cv") if k in learned}
    return {**zoom, **kept.result.info}


def refine(problem: Problem):
    """The best of the learned and power kernels and their SBD refinement."""
    cands = yield from compete(problem)
    best = yield from complete(problem, min(cands.values(), key=lambda c: c.cv_residual),
                               cands)
    info = {**kept_info(best, cands), "refine_kept": best.name,
            "refine_cv": {c.name: c.cv_residual for c in cands.values()}}
    # kernel, latent and uncertainty belong together: only learned kernels have them
    return replace(best.result, info=info)
