"""``method="auto"``: run the candidates; keep the learned prior fitted to the map
unless another candidate clearly explains the map better.

Candidates: the learned two-stage kernel, the power-spectrum kernel and their refinements
(:mod:`.refine`: SBD from each, and the latent fit through the learned decoder). Each is
scored by the cross-validated residual (how well its kernel predicts pixels held out of
the fit, :mod:`..quality`) — the one score that can compare methods on a user's own map
without ground truth. Every candidate's score is reported in ``info["candidates"]``.

The latent fit is kept unless another candidate predicts the held-out pixels clearly
better (``AutoConfig.prefer_margin``), or worse than the network's kernel it started
from (then that kernel, under the same margin). It is the only candidate that both the
learned prior and the map shape, and small CV differences mostly measure the kernel's
core: on held-out class draws the CV residual ordered candidate pairs like the tail
similarity only 55 % of the time. The rule and its margin were chosen on our own class
draws (docs/extraction.md §6), never on the foreign set.
"""

from __future__ import annotations

from dataclasses import replace

from ..registry import MethodResult, Problem
from .refine import LATENT, compete, complete, judging, kept_info

#: The learned-prior candidate auto prefers while no other candidate's CV residual is
#: lower by more than ``AutoConfig.prefer_margin`` (relative).
PREFERRED = LATENT
START = "two-stage"  # the latent fit's start: a fit that explains less than it is not kept


def choose(scores: dict[str, float], margin: float) -> str:
    """The candidate auto keeps: :data:`PREFERRED` unless another beats it by ``margin``
    or the fit predicts held-out pixels worse than the two-stage kernel it started from;
    then that start, under the same margin; else the lowest score.

    The margin guards the learned kernel in both places: where every candidate scores
    alike (a stack whose five scores lay within 0.2 %), a fit a hair worse than its start
    must not hand the choice to whichever kernel is a hair better still.
    """
    best = min(scores, key=scores.get)
    bound = scores[best] * (1 + margin)  # within it, a candidate counts as good as the best
    pref = scores.get(PREFERRED)
    if pref is None:  # no latent fit (e.g. at a resampled working scale): the lowest
        return best
    start = scores.get(START, pref)
    if pref <= bound and pref <= start:
        return PREFERRED
    return START if start <= bound else best  # without START, start is pref > bound


def auto(problem: Problem) -> MethodResult:
    """The latent fit, or the candidate with a clearly lower cross-validated residual."""
    cands = yield from compete(problem)
    kept = cands[choose({c.name: c.cv_residual for c in cands.values()},
                        problem.config.prefer_margin)]
    kept = yield from complete(problem, kept, cands)  # a long stack's refinement: all energies
    info = {**kept_info(kept, cands), "method": kept.method, "auto_pick": kept.name,
            "candidates": {c.name: {"cv_residual": c.cv_residual} for c in cands.values()},
            # a long stack's candidates are scored on a few of its energies
            "candidates_energies": len(judging(problem)[0].observation),
            "refinement_gain": refinement_gain(cands[START].cv_residual, kept.cv_residual)}
    return replace(kept.result, info=info)


def refinement_gain(first: float, kept: float) -> float:
    """How much lower the kept candidate's held-out residual is than the network's alone
    (the fast first look), as a fraction of the network's: 0 when it kept the network's."""
    return float(max(first - kept, 0.0) / first) if first > 0 else 0.0
