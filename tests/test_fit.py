"""The data-consistent fit, the automatic window and the scores without ground truth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_qpi import AutoConfig, extract, simulate
from napari_qpi.extraction.extract import prepare
from napari_qpi.extraction.fit import fit_map
from napari_qpi.extraction.methods.auto import PREFERRED, choose
from napari_qpi.extraction.operator import ConvOperator
from napari_qpi.extraction.quality import cv_residual, whiteness
from napari_qpi.extraction.registry import METHODS
from napari_qpi.extraction.window import estimate_window, ring_rms
from napari_qpi.progress import drain


def _stack(seed=0, shape=(64, 64), energies=(0.0, 20.0, 40.0), **kw):
    return simulate(seed=seed, shape=shape, energies=list(energies), kernel_size=25,
                    n_scatterers=12, **kw)


def _sign_flipping():
    sim = _stack(seed=1, snr=20.0)
    obs = sim.observation.copy()
    obs[1] = -obs[1]  # the kernel of energy 1 changes sign
    return obs


CASES = {
    "random": lambda: np.random.default_rng(0).normal(size=(2, 48, 48)),
    "constant-slice": lambda: np.concatenate([_stack(seed=2).observation[:2],
                                              np.full((1, 64, 64), 3.0)]),
    "sign-flipping": _sign_flipping,
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", ["two-stage", "power", "one-step", "wiener", "sbd"])
def test_relative_residual_never_above_one(method, case):
    obs = CASES[case]()
    pos = np.argwhere(np.abs(obs[0]) >= np.sort(np.abs(obs[0]).ravel())[-5])[:5]
    kw = {"positions": pos} if METHODS[method].needs_positions else {}
    if method == "sbd":
        kw["kernel_size"] = 11  # a small window keeps the classical solver quick here
    res = extract(obs, method=method, **kw)
    info = res.info
    assert 0 <= info["relative_residual"] <= 1 + 1e-9
    assert all(0 <= v <= 1 + 1e-9 for v in info["per_energy_residual"])
    assert np.all(np.isfinite(res.residual))
    if case == "constant-slice":
        assert any("constant" in w for w in info["warnings"])
        assert not np.any(res.kernel[2])  # left out, not scaled by 1
        assert info["relative_residual"] < 1  # and the other slices still explained


def test_amplitudes_follow_a_kernel_that_changes_sign_with_energy():
    sim = _stack(seed=3, snr=50.0)
    obs = sim.observation - sim.observation.mean(axis=(-2, -1), keepdims=True)
    factors = np.array([1.0, -0.5, 2.0])
    obs = obs * factors[:, None, None]
    truth = sim.kernel * factors[:, None, None]
    for method, kw in (("wiener", {"positions": sim.positions}), ("power", {})):
        res = extract(obs, method=method, kernel_size=25, **kw)
        # per energy: the sign of the truth (power's zero-phase kernels all have a
        # positive centre: the sign can only come from the fitted amplitude)
        dots = np.sum(res.kernel * truth, axis=(-2, -1))
        assert np.all(dots > 0), method
        if method == "wiener":  # and the relative sizes of the truth
            ratio = np.linalg.norm(res.kernel, axis=(-2, -1)) / np.linalg.norm(
                truth, axis=(-2, -1))
            np.testing.assert_allclose(ratio / ratio[0], 1.0, rtol=0.15)


def test_fit_keeps_the_methods_own_activation_when_it_explains_more():
    sim = _stack(seed=4, snr=100.0)
    y, *_ = prepare(sim.observation)
    x = np.zeros(y.shape[-2:])
    p = np.rint(sim.positions).astype(int)
    x[p[:, 0], p[:, 1]] = 1.0
    noise = np.full(len(y), 1e-3)
    with_own = fit_map(y, sim.kernel, noise=noise, activation=x, rounds=1, num_iter=2)
    without = fit_map(y, sim.kernel, noise=noise, rounds=1, num_iter=2)
    assert with_own.relative_residual <= without.relative_residual + 1e-12
    assert with_own.source == "method"


def _true_extent(kernel, fraction=0.05):
    """Diameter where the radial RMS of a (k, k) kernel last exceeds 5 % of its peak."""
    prof = ring_rms(kernel, kernel.shape[-1] // 2)
    return 2 * np.nonzero(prof > fraction * prof.max())[0][-1] + 1


def test_window_estimate_follows_the_kernel_extent():
    """Compact (large broadening) and long-tailed kernels of four families, two seeds."""
    ratios, windows = [], {30.0: [], None: []}
    for family in ("square", "triangular", "free_electron", "rectangular"):
        for broadening in (30.0, None):  # compact: extent 13–25 px; default: 23–33 px
            for seed in (1, 2):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sim = simulate(family=family, broadening=broadening, shape=(128, 128),
                                   kernel_size=127, snr=10.0, seed=seed,
                                   n_scatterers=10 + 10 * seed)
                est = estimate_window(sim.observation[:1])
                assert est % 2 == 1
                windows[broadening].append(est)
                ratios.append(est / _true_extent(sim.kernel[0]))
    ratios = np.array(ratios)
    # 12 of 16 before the long wavelengths were left out (window.HIGHPASS), 11 after: one
    # map went 0.79 → 0.66, three moved within the band; the misses (1.35–1.92) are the same
    assert np.mean(np.abs(ratios - 1) <= 0.3) >= 0.65, np.round(ratios, 2)
    assert 0.8 <= np.median(ratios) <= 1.25
    # and the estimate follows the extent: compact kernels get smaller windows
    assert np.mean(windows[30.0]) < np.mean(windows[None])


def test_window_estimate_on_instrument_maps_is_not_cut_short_by_correlated_noise():
    """On maps seen through the instrument (1/f noise, lines, a background, a lattice) the
    autocorrelation's floor rises with the correlated noise; leaving the map's longest
    wavelengths out keeps the window from reading a fraction of the pattern. Own draws
    of a seed the rule was not chosen on (45; chosen on 43 and 44): without the cut the
    median ratio was 0.61 and 5 of 24 were within ±30 %, with it 0.69 and 9."""
    from napari_qpi.evaluation.instrument import make_class_instrument_cases, make_instrument_cases
    from napari_qpi.extraction.finish import kernel_extent
    from napari_qpi.io.pipeline import preprocess

    cases = make_instrument_cases(12, seed=45) + make_class_instrument_cases(12, seed=45)
    ratios = []
    for c in cases:
        y, _ = preprocess(np.asarray(c.observation, float)[None], "auto")
        y = prepare(y)[0]
        ratios.append(estimate_window(y, maximum=65) / kernel_extent(c.kernel[None]))
    ratios = np.array(ratios)
    assert np.median(ratios) >= 0.65, np.round(ratios, 2)
    assert np.mean(np.abs(ratios - 1) <= 0.3) >= 0.33, np.round(ratios, 2)


def test_reported_extent_ignores_the_kernels_noise_floor():
    """The reported extent reads 3 % of the peak (extracted tails come back weak), yet
    noise spread over the window, as a kernel read from noisy data carries, does not
    stretch it to the window's edge."""
    from napari_qpi.extraction.finish import kernel_extent, reported_extent

    rng = np.random.default_rng(3)
    for family, broadening in (("square", 30.0), ("triangular", None)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kern = simulate(family=family, broadening=broadening, shape=(96, 96),
                            kernel_size=65, seed=4, energies=[10.0]).kernel
        clean = reported_extent(kern)
        assert kernel_extent(kern) <= clean < 63  # reads further than 5 %, not the edge
        noisy = kern + 0.015 * np.abs(kern).max() * rng.standard_normal(kern.shape)
        # a bare 3 % reads the noise far out; with the floor taken off it stays
        assert kernel_extent(noisy, 0.03) > 1.3 * clean
        assert abs(reported_extent(noisy) / clean - 1) <= 0.3


def test_cv_residual_ranks_the_right_kernel_above_a_wrong_one():
    sim = _stack(seed=5, snr=10.0, family="square")
    y, _, noise, _ = prepare(sim.observation)
    right = cv_residual(y, sim.kernel, noise=noise)
    wrong_family = simulate(family="free_electron", seed=5, shape=(64, 64), kernel_size=25,
                            energies=[0.0, 20.0, 40.0]).kernel
    rng = np.random.default_rng(0)
    for wrong in (wrong_family, rng.normal(size=sim.kernel.shape),
                  np.pad(np.ones((3, 3, 3)), ((0, 0), (11, 11), (11, 11)))):
        assert cv_residual(y, wrong, noise=noise) > right + 0.05
    assert right < 0.6


def test_tail_aware_cv_residual_sees_a_missing_tail_the_plain_one_barely_sees():
    """Away from the scatterers only the tail predicts pixels: a kernel cut to its core
    loses there far more than on all held-out pixels."""
    sim = _stack(seed=5, snr=10.0, family="square")
    y, _, noise, _ = prepare(sim.observation)
    c = sim.kernel.shape[-1] // 2
    core = np.zeros_like(sim.kernel)
    core[:, c - 3:c + 4, c - 3:c + 4] = sim.kernel[:, c - 3:c + 4, c - 3:c + 4]
    plain = [cv_residual(y, k, noise=noise) for k in (sim.kernel, core)]
    tail = [cv_residual(y, k, noise=noise, away=4) for k in (sim.kernel, core)]
    assert tail[1] - tail[0] > plain[1] - plain[0] + 0.1
    assert cv_residual(y, sim.kernel, noise=noise, away=None) == plain[0]


def test_whiteness_is_high_for_noise_and_low_for_structure():
    rng = np.random.default_rng(0)
    assert whiteness(rng.normal(size=(2, 64, 64))) > 0.9
    yy, xx = np.mgrid[:64, :64]
    assert whiteness(np.cos(yy / 3.0) + 0.05 * rng.normal(size=(64, 64))) < 0.5


def test_auto_returns_a_named_candidate_and_its_scores():
    sim = _stack(seed=6, snr=10.0, energies=(10.0,))
    res = extract(sim.observation)
    assert res.info["requested_method"] == "auto"
    cands = res.info["candidates"]
    assert res.info["auto_pick"] in cands and res.method in METHODS
    assert {"two-stage", "power"} <= set(cands) and any(c.startswith("refine") for c in cands)
    best = choose({m: c["cv_residual"] for m, c in cands.items()}, AutoConfig().prefer_margin)
    assert res.method == best.split(" (")[0] and res.info["auto_pick"] == best
    for key in ("relative_residual", "cv_residual", "whiteness", "active_fraction",
                "kernel_size", "noise_level", "sparsity"):
        assert key in res.info


def test_auto_keeps_the_latent_fit_unless_another_is_clearly_better():
    m = AutoConfig().prefer_margin
    near = {"two-stage": 0.55, "power": 0.47, "refine (latent)": 0.47 * (1 + m) - 1e-6}
    assert choose(near, m) == PREFERRED == "refine (latent)"
    far = dict(near, **{"refine (latent)": 0.47 * (1 + m) + 1e-3})
    assert choose(far, m) == "power"
    # a wider margin (a user's AutoConfig) keeps the fit where the default would not
    assert choose(far, 2 * m) == PREFERRED and choose(near, 0.0) == "power"
    # a fit that predicts held-out pixels worse than its own start is not kept: the
    # start is, under the same margin, unless another candidate is clearly better
    worse = {"two-stage": 0.48, "power": 0.47, "refine (latent)": 0.49}
    assert choose(worse, m) == "two-stage"
    assert choose(dict(worse, power=0.48 / (1 + m) - 1e-3), m) == "power"
    # without a latent fit (e.g. at a resampled working scale): the lowest CV
    assert choose({"two-stage": 0.5, "refine (power)": 0.4}, m) == "refine (power)"


def test_extraction_of_pure_noise_warns():
    obs = np.random.default_rng(1).normal(size=(64, 64))
    res = extract(obs, method="power")
    assert res.info["cv_residual"] > 0.9
    assert any("explains little" in w for w in res.info["warnings"])


def test_operator_forward_of_fit_reproduces_the_map():
    """The returned kernel and activation are the model: K ⊛ X + offsets = data − residual,
    the data being the preprocessed map (its steps replayed from ``info``)."""
    from napari_qpi.io.pipeline import preprocess

    sim = _stack(seed=7, snr=20.0)
    for steps in (None, "auto"):
        res = extract(sim.observation, method="wiener", positions=sim.positions,
                      kernel_size=25, preprocess=steps)
        model = ConvOperator(res.kernel.astype(float), sim.observation.shape[-2:]).forward(
            res.activation.astype(float))
        data, _ = preprocess(sim.observation.astype(float), res.info["preprocess"])
        back = data - res.residual
        diff = (back - model) - (back - model).mean(axis=(-2, -1), keepdims=True)
        assert np.abs(diff).max() < 1e-3 * np.abs(sim.observation).max()


@pytest.mark.parametrize(("crop_over_wide", "mid_over_wide", "kept"),
                         [(0.97, 1.0, 65), (1.02, 1.0, 65), (0.9, 1.0, 21), (0.9, 0.8, 43),
                          (1.0, 0.97, 65)])
def test_automatic_window_cuts_a_tail_only_when_the_crop_is_clearly_better(
        monkeypatch, crop_over_wide, mid_over_wide, kept):
    """A learned 65-px kernel keeps its tail unless a crop on the ladder (the estimated
    window, the midpoint) predicts held-out pixels better by more than the window margin
    (5 %); of the crops that do, the best. A user's wider margin keeps the tail."""
    from napari_qpi.extraction import quality
    from napari_qpi.extraction.finish import choose_window
    from napari_qpi.extraction.registry import MethodResult, Problem

    assert AutoConfig().window_margin == 0.05
    cv = {65: 0.5, 43: 0.5 * mid_over_wide, 21: 0.5 * crop_over_wide}
    monkeypatch.setattr(quality, "problem_cv", lambda problem, k, s=None: cv[k.shape[-1]])
    kernel = np.random.default_rng(0).normal(size=(1, 65, 65))
    problem = Problem(np.zeros((1, 8, 8)), None, 65)
    result = drain(choose_window(None, MethodResult(kernel), problem, 21, None))
    assert result.kernel.shape[-1] == kept
    assert result.info["window_cv"] == cv and result.info["window_estimate"] == 21
    wide = Problem(np.zeros((1, 8, 8)), None, 65, config=AutoConfig(window_margin=0.5))
    assert drain(choose_window(None, MethodResult(kernel), wide, 21, None)).kernel.shape[-1] == 65


def test_structure_warning_weighs_the_residuals_share_of_the_map():
    """A good kernel at high SNR leaves a small residual whose little structure is no
    pattern to act on (the bare structure above 0.05 warned on every such fit tried); a
    lattice left in the map is one."""
    from napari_qpi.physics.instrument import through_instrument

    sim = simulate(family="free_electron", seed=2, energies=[10.0], snr=50)
    good = extract(sim.observation[0], method="two-stage")
    assert good.info["residual_structure"] > 0.05
    assert not any("structured" in w for w in good.info["warnings"])
    seen = through_instrument(sim.observation, sim.kernel, sim.positions, ["lattice"], rng=2)
    left = extract(seen.observation[0], method="two-stage", preprocess=["background"])
    assert any("structured" in w for w in left.info["warnings"])
