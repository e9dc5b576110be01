"""A long stack's candidates are judged on a few energies (extraction/methods/refine.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi import AutoConfig
from napari_qpi.extraction.methods import auto as auto_mod
from napari_qpi.extraction.methods import classical, latent, refine
from napari_qpi.extraction.registry import MethodResult, Problem
from napari_qpi.progress import drain


def _stubs(monkeypatch, best: str):
    """Stand-ins for the expensive steps: each kernel's value at [e, 0, 0] is its energy,
    plus 100 for an SBD refinement; ``best`` scores lowest. Returns the SBD calls."""
    calls = []

    def starts(problem):
        e = len(problem.observation)
        k = np.arange(float(e))[:, None, None] * np.ones((e, 3, 3))
        return {"two-stage": MethodResult(k), "power": MethodResult(-k)}
        yield

    def fitted(problem, mask):
        e = len(problem.observation)
        return MethodResult(np.arange(float(e))[:, None, None] * np.ones((e, 3, 3)) + 0.5), 0.9
        yield

    def polish(problem, starts, mask=None, sparsity=None):
        calls.append((len(problem.observation), sorted(starts), sparsity))
        return {name: MethodResult(np.asarray(r.kernel) + 100) for name, r in starts.items()}
        yield

    def scores(problem, results):
        return {name: 0.1 if name == best else 0.8 for name in results}
        yield

    monkeypatch.setattr(refine, "candidates", starts)
    monkeypatch.setattr(refine, "polish", polish)
    monkeypatch.setattr(refine, "score_all", scores)
    monkeypatch.setattr(latent, "best_view_fit", fitted)
    monkeypatch.setattr(classical, "sbd_sparsity", lambda problem: 7.0)
    monkeypatch.setattr("napari_qpi.extraction.quality.problem_cv",
                        lambda problem, kernel: 0.9)
    return calls


@pytest.mark.parametrize("best", ["refine (power)", "refine (latent sbd)"])
def test_a_long_stack_refines_on_a_few_energies_and_the_kept_refinement_on_all(
        monkeypatch, best):
    """AutoConfig.view_energies: on a stack longer than that, the SBD refinements run and
    every candidate is scored on that many evenly spaced energies; only the refinement
    auto keeps runs again on every energy, from its start's whole kernel and with its
    own λ."""
    calls = _stubs(monkeypatch, best)
    y = np.ones((20, 12, 12))
    res = drain(auto_mod.auto(Problem(y, None, 3, noise=0.5,
                                      config=AutoConfig(view_energies=5))))
    start = {"refine (power)": "power", "refine (latent sbd)": "latent"}[best]
    lam = 7.0 if start == "latent" else None
    assert calls == [(5, ["refine (power)", "refine (two-stage)"], None),
                     (5, ["refine (latent sbd)"], 7.0),
                     (20, [best], lam)]
    assert res.info["auto_pick"] == best and res.kernel.shape == (20, 3, 3)
    whole = np.arange(20.0) * (-1 if start == "power" else 1) + (0.5 if start == "latent"
                                                                  else 0)
    np.testing.assert_allclose(res.kernel[:, 0, 0], whole + 100)


def test_a_short_stack_and_a_kept_start_run_no_refinement_twice(monkeypatch):
    """A stack of at most view_energies energies is judged on all of them; a kept
    start or latent fit is already whole."""
    calls = _stubs(monkeypatch, "refine (power)")
    drain(auto_mod.auto(Problem(np.ones((5, 12, 12)), None, 3, noise=0.5,
                                config=AutoConfig(view_energies=5))))
    assert [c[0] for c in calls] == [5, 5]
    calls = _stubs(monkeypatch, "power")
    res = drain(auto_mod.auto(Problem(np.ones((20, 12, 12)), None, 3, noise=0.5,
                                      config=AutoConfig(view_energies=5))))
    assert [c[0] for c in calls] == [5, 5] and res.info["auto_pick"] == "power"
    np.testing.assert_allclose(res.kernel[:, 0, 0], -np.arange(20.0))
