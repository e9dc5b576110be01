"""``method="auto"``: run the fast candidates, keep the one that best explains the map.

Candidates: the learned two-stage kernel, the power-spectrum kernel and their SBD
refinement (:mod:`.refine`). Each is scored by the cross-validated residual (how well its
kernel predicts pixels held out of the fit, :mod:`..quality`) — the one score that can
compare methods on a user's own map without ground truth — and the lowest wins. Every
candidate's score is reported in ``info["candidates"]``.
"""

from __future__ import annotations

from ..registry import MethodResult, Problem
from .refine import compete


def auto(problem: Problem):
    """The candidate with the lowest cross-validated residual."""
    results, scores = yield from compete(problem)
    best = min(scores, key=scores.get)
    r = results[best]
    # "refine (power)": the refine candidate started from the power kernel
    info = {"method": best.split(" (")[0], "auto_pick": best,
            "candidates": {name: {"cv_residual": float(v)} for name, v in scores.items()}}
    return MethodResult(r.kernel, r.activation, r.uncertainty, r.latent, info)
