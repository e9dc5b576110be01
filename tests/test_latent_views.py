"""The latent fit from the network's quarter-turn views (extraction/methods/latent.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from napari_qpi import AutoConfig, simulate
from napari_qpi.evaluation.metrics import tail_similarity
from napari_qpi.extraction.extract import prepare
from napari_qpi.extraction.methods.latent import best_view_fit, latent_fit, turn
from napari_qpi.extraction.methods.learned import run_network
from napari_qpi.extraction.quality import holdout_mask, problem_cv
from napari_qpi.extraction.registry import Problem
from napari_qpi.progress import drain


def test_a_turned_problem_keeps_each_scatterer_under_its_position():
    y = np.zeros((2, 20, 31))
    pos = np.array([[3, 5], [17, 30], [0, 0], [10, 12], [19, 0]])
    y[:, pos[:, 0], pos[:, 1]] = np.arange(1, 6)
    for r in range(4):
        t = turn(Problem(y, pos, 9), r)
        assert t.observation.shape[-2:] == ((20, 31) if r % 2 == 0 else (31, 20))
        p = t.positions.astype(int)
        np.testing.assert_array_equal(t.observation[:, p[:, 0], p[:, 1]],
                                      y[:, pos[:, 0], pos[:, 1]])
    assert turn(Problem(y, None, 9), 1).positions is None


def _problem():
    # a rectangular (C2) band: a quarter turn changes its kernel
    sim = simulate(family="rectangular", seed=1, n_scatterers=25, snr=5.0)
    y, _, noise, _ = prepare(sim.observation[:1])
    return sim.kernel[:1], Problem(y, None, 65, noise=float(noise[0]), weights="seen")


def test_a_view_fit_is_turned_back_onto_the_map():
    truth, problem = _problem()
    mask = holdout_mask(problem.observation.shape[-2:], problem.rng)
    # the views come from the problem's AutoConfig
    one = replace(problem, config=AutoConfig(views=(1,)))
    fit, cv = drain(best_view_fit(one, mask))
    assert fit.info == {"latent_view": 1}
    assert cv == problem_cv(problem, fit.kernel)
    # the kernel fitted on the turned map, turned back, has the true kernel's orientation
    assert tail_similarity(truth, fit.kernel) > 0.7
    assert tail_similarity(truth, fit.kernel) > tail_similarity(
        truth, np.rot90(fit.kernel, 1, (-2, -1))) + 0.1


def test_a_stack_starts_from_its_own_views(monkeypatch):
    """One map takes AutoConfig.views, an energy stack AutoConfig.stack_views (a stack's
    views run one after another)."""
    import napari_qpi.extraction.methods.latent as latent

    seen = []

    def network(turned, *args, **kwargs):
        seen.append(turned.observation.shape)
        return None
        yield

    monkeypatch.setattr(latent, "fit_views", _no_fits)
    monkeypatch.setattr("napari_qpi.extraction.methods.learned.run_network", network)
    y = np.zeros((1, 20, 31))
    cfg = AutoConfig(views=(0, 1, 2), stack_views=(1,))
    drain(best_view_fit(Problem(y, None, 9, config=cfg)))
    assert seen == [(1, 20, 31), (1, 31, 20), (1, 20, 31)]
    seen.clear()
    drain(best_view_fit(Problem(np.zeros((3, 20, 31)), None, 9, config=cfg)))
    assert seen == [(3, 31, 20)]
    assert AutoConfig().stack_views == AutoConfig().views
    with pytest.raises(ValueError, match="stack_views"):
        AutoConfig(stack_views=(4,))


def test_a_long_stack_chooses_its_view_on_a_few_of_its_energies(monkeypatch):
    """A stack of more than AutoConfig.view_energies energies: the views are fitted and
    scored on that many evenly spaced energies (their noise levels with them), then the
    whole stack is fitted from the view that won alone; a shorter stack as before."""
    import napari_qpi.extraction.methods.latent as latent
    from napari_qpi.extraction.registry import MethodResult

    calls = []

    labels = []

    def fits(problem, starts, mask, label):
        labels.append(label)
        calls.append((problem.observation[:, 0, 0].tolist(), list(np.atleast_1d(
            problem.noise)), sorted(starts)))
        return {r: MethodResult(np.full((len(problem.observation), 3, 3), float(r)))
                for r in starts}
        yield

    monkeypatch.setattr(latent, "fit_views", fits)
    monkeypatch.setattr("napari_qpi.extraction.methods.learned.run_network", _no_network)
    # view 2 predicts held-out pixels best
    monkeypatch.setattr("napari_qpi.extraction.quality.problem_cv",
                        lambda problem, kernel: abs(float(kernel.flat[0]) - 2.0))
    y = np.arange(20.0)[:, None, None] * np.ones((20, 12, 12))
    cfg = AutoConfig(view_energies=5)
    fit, _ = drain(best_view_fit(Problem(y, None, 3, noise=np.arange(20.0) / 10,
                                         config=cfg)))
    chosen_on = [0, 5, 10, 14, 19]
    assert calls == [(chosen_on, [i / 10 for i in chosen_on], [0, 1, 2, 3]),
                     (list(range(20)), list(np.arange(20.0) / 10), [2])]
    assert fit.info == {"latent_view": 2} and fit.kernel.shape[0] == 20
    # the view's choice shows as its own step, not as the fit restarting
    assert "5 of 20 energies" in labels[0] and labels[1] == latent.LABEL
    calls.clear()
    drain(best_view_fit(Problem(y[:5], None, 3, noise=0.5, config=cfg)))
    assert calls == [([0, 1, 2, 3, 4], [0.5], [0, 1, 2, 3])]
    with pytest.raises(ValueError, match="view_energies"):
        AutoConfig(view_energies=0)


def test_views_that_tie_on_held_out_pixels_are_averaged_where_it_predicts_as_well(
        monkeypatch):
    """AutoConfig.view_blend: the views within that fraction of the best held-out
    residual are averaged (unit-norm kernels, at the best's norm); the mean is kept
    where its own residual is within that fraction of the best too; 0 keeps the best
    view."""
    import napari_qpi.extraction.methods.latent as latent
    from napari_qpi.extraction.registry import MethodResult

    kernels = {0: np.eye(3)[None] * 2.0, 1: np.ones((1, 3, 3)), 2: np.fliplr(np.eye(3))[None]}
    residual = {0: 1.00, 1: 1.50, 2: 1.01}  # views 0 and 2 tie within 2 %

    def fits(problem, starts, mask, label):
        return {r: MethodResult(kernels[r], latent=np.full(2, float(r))) for r in starts}
        yield

    def cv(problem, kernel):
        for r, k in kernels.items():
            if np.array_equal(kernel, k):
                return residual[r]
        return blend_residual[0]

    monkeypatch.setattr(latent, "fit_views", fits)
    monkeypatch.setattr("napari_qpi.extraction.methods.learned.run_network", _no_network)
    monkeypatch.setattr("napari_qpi.extraction.quality.problem_cv", cv)
    y = np.zeros((1, 12, 12))
    cfg = AutoConfig(views=(0, 1, 2), view_blend=0.02)
    blend_residual = [0.95]
    fit, score = drain(best_view_fit(Problem(y, None, 3, config=cfg)))
    mean = (kernels[0] / np.linalg.norm(kernels[0]) + kernels[2] / np.linalg.norm(kernels[2]))
    np.testing.assert_allclose(fit.kernel, mean / 2 * np.linalg.norm(kernels[0]))
    assert score == 0.95 and fit.info == {"latent_view": 0} and fit.latent[0] == 0.0
    blend_residual = [1.015]  # the mean ties with the best view too: kept
    fit, score = drain(best_view_fit(Problem(y, None, 3, config=cfg)))
    assert score == 1.015 and not np.array_equal(fit.kernel, kernels[0])
    blend_residual = [1.03]  # the mean predicts clearly worse: the best view alone
    fit, score = drain(best_view_fit(Problem(y, None, 3, config=cfg)))
    assert np.array_equal(fit.kernel, kernels[0]) and score == 1.0
    blend_residual = [0.5]
    fit, _ = drain(best_view_fit(Problem(y, None, 3, config=AutoConfig(views=(0, 1, 2),
                                                                        view_blend=0))))
    assert np.array_equal(fit.kernel, kernels[0])
    with pytest.raises(ValueError, match="view_blend"):
        AutoConfig(view_blend=-0.1)


def _no_network(*args, **kwargs):
    return None
    yield  # a generator, like run_network


def _no_fits(*args, **kwargs):
    return {}
    yield  # a generator, like fit_views


@pytest.mark.slow  # 6 s or more: the full suite runs it, the fast lane not
def test_the_kept_view_predicts_held_out_pixels_at_least_as_well_as_the_first():
    _, problem = _problem()
    mask = holdout_mask(problem.observation.shape[-2:], problem.rng)
    fit, cv = drain(best_view_fit(problem, mask))
    first = drain(latent_fit(problem, drain(run_network(problem, "two-stage", rotations=1)),
                             mask))
    assert fit.info["latent_view"] in (0, 1, 2, 3)
    assert cv <= problem_cv(problem, first.kernel) + 1e-12


@pytest.mark.slow  # 6 s or more: the full suite runs it, the fast lane not
def test_views_fitted_together_take_each_views_own_steps():
    """fit_views runs the views' fits as one optimisation: each view must end where its
    fit alone ends (no view's data or start leaks into another's)."""
    from napari_qpi.extraction.methods.latent import fit_views, turn

    _, problem = _problem()
    mask = holdout_mask(problem.observation.shape[-2:], problem.rng)
    starts = {r: drain(run_network(turn(problem, r), "two-stage", rotations=1))
              for r in (0, 1)}
    together = drain(fit_views(problem, starts, mask))
    for r in (0, 1):
        alone = drain(fit_views(problem, {r: starts[r]}, mask))[r]
        scale = np.abs(alone.kernel).max()
        np.testing.assert_allclose(together[r].kernel, alone.kernel, atol=1e-4 * scale)
        np.testing.assert_allclose(together[r].latent, alone.latent, atol=1e-4)
    # and the two views are different fits (a shared start would make them equal)
    assert np.abs(together[0].kernel - together[1].kernel).max() > 1e-2 * scale


def test_a_pruned_view_leaves_the_others_fits_unchanged():
    """AutoConfig.view_pruning drops views mid-fit: the view that goes on must end where
    its fit alone ends (its latent, correction and Adam's moments carried over)."""
    from napari_qpi.extraction.methods.latent import fit_views, turn

    _, problem = _problem()
    mask = holdout_mask(problem.observation.shape[-2:], problem.rng)
    starts = {r: drain(run_network(turn(problem, r), "two-stage", rotations=1))
              for r in (0, 1)}
    pruned = replace(problem, config=AutoConfig(view_pruning=((1, 1),)))
    kept = drain(fit_views(pruned, starts, mask))
    assert len(kept) == 1
    (r, fit), = kept.items()
    alone = drain(fit_views(problem, {r: starts[r]}, mask))[r]
    scale = np.abs(alone.kernel).max()
    np.testing.assert_allclose(fit.kernel, alone.kernel, atol=1e-4 * scale)
    np.testing.assert_allclose(fit.latent, alone.latent, atol=1e-4)
    # without held-out pixels nothing is pruned (no honest score to prune by)
    assert len(drain(fit_views(pruned, starts, None))) == 2
