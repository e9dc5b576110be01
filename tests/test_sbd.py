"""Sparse blind deconvolution: gradients, re-centring, recovery on its own terms."""

import numpy as np
import pytest
import torch

from napari_qpi import extract, simulate
from napari_qpi.evaluation.metrics import kernel_similarity, tail_similarity
from napari_qpi.extraction.noise import default_sparsity, noise_level
from napari_qpi.extraction.operator import ConvOperator
from napari_qpi.extraction.recenter import core_offset, l1_window_offset, recenter
from napari_qpi.extraction.sbd import (
    activation_gradient,
    iter_sbd,
    kernel_gradient,
    kernel_step,
    objective,
    sbd,
)
from napari_qpi.progress import Progress


@pytest.fixture
def small_problem():
    g = torch.Generator().manual_seed(0)
    kernel = torch.randn(2, 3, 7, 7, generator=g, dtype=torch.float64)
    x = torch.rand(2, 20, 18, generator=g, dtype=torch.float64)
    y = torch.randn(3, 20, 18, generator=g, dtype=torch.float64)
    return kernel, x, y


def _data_term(kernel, x, y):
    return objective(ConvOperator(kernel, y.shape[-2:]), x, y, 0.0)


def test_kernel_gradient_finite_difference(small_problem):
    kernel, x, y = small_problem
    grad = kernel_gradient(ConvOperator(kernel, y.shape[-2:]), x, y)
    g = torch.Generator().manual_seed(1)
    d = torch.randn(kernel.shape, generator=g, dtype=torch.float64)
    eps = 1e-6
    fd = (_data_term(kernel + eps * d, x, y) - _data_term(kernel - eps * d, x, y)) / (2 * eps)
    torch.testing.assert_close(fd, (grad * d).sum(dim=(-3, -2, -1)), rtol=1e-6, atol=1e-6)


def test_activation_gradient_finite_difference(small_problem):
    kernel, x, y = small_problem
    grad = activation_gradient(ConvOperator(kernel, y.shape[-2:]), x, y)
    g = torch.Generator().manual_seed(2)
    d = torch.randn(x.shape, generator=g, dtype=torch.float64)
    eps = 1e-6
    fd = (_data_term(kernel, x + eps * d, y) - _data_term(kernel, x - eps * d, y)) / (2 * eps)
    torch.testing.assert_close(fd, (grad * d).sum(dim=(-2, -1)), rtol=1e-6, atol=1e-6)


def test_kernel_step_descends_along_the_checked_gradient(small_problem, monkeypatch):
    """The solver's kernel step calls kernel_gradient (the one checked above) and lowers
    the data term."""
    import napari_qpi.extraction.sbd as sbd_module

    kernel, x, y = small_problem
    kernel = kernel / kernel.flatten(1).norm(dim=1)[:, None, None, None]
    calls = []
    real = sbd_module.kernel_gradient

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(sbd_module, "kernel_gradient", spy)
    op = ConvOperator(kernel, y.shape[-2:])
    new, _ = kernel_step(op, x, y, torch.full((2,), 1e-3, dtype=torch.float64))
    assert calls
    assert torch.all(_data_term(new, x, y) <= _data_term(kernel, x, y))
    torch.testing.assert_close(new.flatten(1).norm(dim=1), torch.ones(2, dtype=torch.float64))


def test_a_cancel_lands_inside_the_kernel_steps_backtracking(small_problem):
    """Every backtracking trial is a whole forward pass (~0.1 s on a 64×256² grid, up
    to eight of them): each checks for a Cancel, so the step stops within one trial."""
    import threading

    from napari_qpi.progress import Cancelled, cancellable

    kernel, x, y = small_problem
    kernel = kernel / kernel.flatten(1).norm(dim=1)[:, None, None, None]
    op = ConvOperator(kernel, y.shape[-2:])
    checks = []
    huge = torch.full((2,), 1e6, dtype=torch.float64)  # backtracks all eight times
    with cancellable(None, on_check=lambda: checks.append(1)):
        kernel_step(op, x, y, huge)
    assert len(checks) == 8
    stop = threading.Event()
    stop.set()
    with cancellable(stop), pytest.raises(Cancelled):
        kernel_step(op, x, y, huge)


def test_recenter_moves_kernel_and_activation():
    rng = np.random.default_rng(0)
    k, big = 9, 19
    core = np.zeros((2, big, big))
    block = rng.normal(size=(2, 9, 9)) + 3
    block = block + block[:, ::-1, ::-1]  # centrosymmetric: its energy centroid is the middle
    core[:, 9 - 4 + 3 : 9 + 5 + 3, 9 - 4 - 2 : 9 + 5 - 2] = block
    kernel = torch.from_numpy(core / np.linalg.norm(core))[None]
    x = torch.zeros(1, 40, 40, dtype=torch.float64)
    x[0, 20, 20] = 1.0
    x[0, 10, 25] = 0.5
    assert l1_window_offset(kernel, k).tolist() == [[3, -2]]
    assert core_offset(kernel, 4).tolist() == [[3, -2]]
    before = ConvOperator(kernel, (40, 40)).forward(x)
    new_k, new_x = recenter(kernel, x, 4)
    assert core_offset(new_k, 4).tolist() == [[0, 0]]
    assert new_x[0, 23, 18] == 1.0 and new_x[0, 13, 23] == 0.5
    after = ConvOperator(new_k, (40, 40)).forward(new_x)
    torch.testing.assert_close(before, after)  # the model is unchanged


def test_core_offset_ignores_the_tail():
    # a sharp core at (+5, −7) inside a broad ring-shaped tail with most of the ℓ1 mass
    # centred elsewhere: the paper's ℓ1 window follows the tail, the core rule the core
    yy, xx = np.mgrid[-30:31, -30:31].astype(float)
    tail = 0.03 * np.cos(np.hypot(yy + 10, xx - 12) / 1.5) * (np.hypot(yy + 10, xx - 12) < 28)
    core = np.exp(-((yy - 5) ** 2 + (xx + 7) ** 2) / 4.0)
    kernel = torch.from_numpy(core + tail)[None, None]
    assert core_offset(kernel, 12).tolist() == [[5, -7]]
    assert l1_window_offset(kernel, 21).tolist() != [[5, -7]]


def test_noise_level_and_default_sparsity():
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.3, size=(2, 64, 64))
    assert noise_level(noise) == pytest.approx(0.3, rel=0.1)
    assert default_sparsity(0.0) < default_sparsity(0.3)


def _xcorr_peak_offset(truth, estimate):
    """Shift of ``estimate`` against ``truth`` at the peak of |cross-correlation|."""
    k = truth.shape[-1]
    big = 2 * k - 1
    c = np.fft.irfft2(np.fft.rfft2(estimate, (big, big))
                      * np.conj(np.fft.rfft2(truth, (big, big))), (big, big))
    i, j = np.unravel_index(np.argmax(np.abs(c)), c.shape)
    wrap = lambda v: v - big if v > big // 2 else v  # noqa: E731
    return wrap(i), wrap(j)


def test_sbd_through_extract_is_centred():
    # the paper's ℓ1-window re-centring returned this kernel 17 px off-centre (kernel
    # similarity 0.19, tail 0.24): the |FFT| was right but the real-space kernel was not
    torch.set_num_threads(1)

    sim = simulate(shape=(128, 128), kernel_size=65, n_scatterers=20, snr=20, seed=0)
    res = extract(sim.observation[:1], method="sbd", kernel_size=65)
    truth, est = sim.kernel[0], res.kernel[0]
    dy, dx = _xcorr_peak_offset(truth, est)
    assert max(abs(dy), abs(dx)) <= 1
    assert kernel_similarity(truth, est) >= 0.9
    assert tail_similarity(truth, est) >= 0.5


def test_sbd_recovers_kernel():
    # sparse map: 30 scatterers on 80×80 (< 0.5 % of pixels), SNR 20, 27-px window
    torch.set_num_threads(1)  # 2 threads on a shared 2-core box can be 50× slower
    sim = simulate(shape=(80, 80), kernel_size=27, n_scatterers=30, snr=20, seed=0)
    res = sbd(sim.observation, 27, restarts=2, num_iter=60, refine_iter=30, rng=0)
    sims = kernel_similarity(sim.kernel, res.kernel)
    assert np.min(sims) >= 0.95
    np.testing.assert_allclose(np.linalg.norm(res.kernel), 1.0, rtol=1e-6)
    assert res.activation.min() >= 0
    assert res.objectives.shape == (2,)


def test_iter_sbd_reports_progress():
    sim = simulate(shape=(40, 40), kernel_size=11, n_scatterers=5, seed=1)
    gen = iter_sbd(sim.observation, 11, restarts=1, num_iter=3, refine_iter=2, rng=0)
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert all(isinstance(e, Progress) for e in events)
    assert events[-1].step == events[-1].total == 5
    assert len(events) == 5  # one event per outer iteration: cancel stays quick
    assert result.kernel.shape == (8, 11, 11)


def test_sbd_method_registered():
    sim = simulate(shape=(40, 40), kernel_size=11, n_scatterers=5, seed=1)
    from napari_qpi.extraction.extract import iter_extract

    gen = iter_extract(sim.observation, method="sbd", kernel_size=11)
    first = next(gen)
    assert isinstance(first, Progress)
    gen.close()


def test_sbd_rejects_bad_input():
    with pytest.raises(ValueError, match="kernel_size"):
        sbd(np.zeros((2, 20, 20)), 8)
    with pytest.raises(ValueError, match="init"):
        sbd(np.zeros((2, 20, 20)), 7, init="zeros")
    assert extract is not None


def test_sbd_widens_an_automatic_window_and_keeps_a_given_one():
    """With ``kernel_size=None`` SBD runs in SBD_WIDEN × the window estimate (the tail
    beyond the estimate's 5 % extent still carries signal); a window the user gives is
    the window it runs in."""
    from napari_qpi.extraction.methods.classical import SBD_WIDEN

    sim = simulate(seed=3, energies=[10.0])
    res = extract(sim.observation, method="sbd", rng=0)
    est = res.info["window_estimate"]
    assert res.kernel.shape[-1] == min(65, 2 * int(SBD_WIDEN * est / 2) + 1) > est
    assert extract(sim.observation, method="sbd", kernel_size=21, rng=0).kernel.shape[-1] == 21


@pytest.mark.slow
def test_sbd_in_the_widened_window_recovers_instrument_maps_better():
    """Own instrument draws of a seed the factor was not chosen on (45; chosen on 43 and
    44): SBD in the widened automatic window against SBD in the bare estimate — median
    tail similarity 0.782 against 0.696 on these eight (6 up, 2 down) when chosen; 0.848
    against 0.757 (6 up, 1 down) since SBD's λ follows the held-out noise level."""
    from napari_qpi.evaluation import score
    from napari_qpi.evaluation.instrument import make_instrument_cases

    bare, widened = [], []
    for c in make_instrument_cases(8, seed=45):
        res = extract(c.observation, method="sbd", rng=0)
        at_estimate = extract(c.observation, method="sbd", rng=0,
                              kernel_size=res.info["window_estimate"])
        bare.append(score(c.kernel, at_estimate.kernel)["tail_similarity"])
        widened.append(score(c.kernel, res.kernel)["tail_similarity"])
    assert np.median(widened) >= np.median(bare) + 0.03, (np.round(bare, 3),
                                                          np.round(widened, 3))


def test_sbd_warns_when_the_automatic_window_sits_on_its_lower_bound():
    """Noise alone has no tail in its autocorrelation: the estimate sits on its lower
    bound, and the user is told so (and how to give the window) though SBD runs in a
    widened window."""
    from napari_qpi.extraction.window import MIN_WINDOW

    noise = np.random.default_rng(0).standard_normal((64, 64))
    res = extract(noise, method="sbd", rng=0)
    assert res.info["window_estimate"] == MIN_WINDOW
    assert any("lower bound" in w and "kernel_size" in w for w in res.info["warnings"])


def test_sbd_sparsity_follows_the_held_out_noise_on_an_oversampled_map(monkeypatch):
    """An oversampled map has no noise power near Nyquist: SBD's own (spectral) noise
    estimate reads it as nearly noise-free and λ falls to its floor. The method takes λ
    from the noise level extract read on held-out pixels instead."""
    import napari_qpi.extraction.sbd as solver
    from napari_qpi.evaluation.instrument import make_instrument_cases

    case = make_instrument_cases(4, seed=45)[3]
    assert "oversampled" in case.artefacts
    seen = {}
    run = solver.iter_sbd

    def spy(observation, kernel_size, **kwargs):
        y = np.asarray(observation, float)
        y = y - y.mean(axis=(-2, -1), keepdims=True)
        seen["lam"] = kwargs["sparsity"]
        seen["spectral"] = default_sparsity(noise_level(y / np.sqrt((y**2).mean())))
        return (yield from run(observation, kernel_size, **kwargs))

    monkeypatch.setattr(solver, "iter_sbd", spy)
    extract(case.observation, method="sbd", rng=0)
    assert seen["lam"] > 3 * seen["spectral"], seen


@pytest.mark.slow
def test_sbd_with_the_held_out_noise_level_recovers_instrument_maps_better(monkeypatch):
    """Own instrument draws of a seed the rule was not chosen on (45; chosen on 43):
    SBD's λ from the held-out noise level against its own spectral estimate — median
    tail similarity 0.810 against 0.787 on these twelve (5 up, 2 down; an oversampled
    map 0.21 → 0.81)."""
    import napari_qpi.extraction.methods.classical as classical
    from napari_qpi.evaluation import score
    from napari_qpi.evaluation.instrument import make_instrument_cases

    held, spectral = [], []
    for c in make_instrument_cases(12, seed=45):
        held.append(score(c.kernel, extract(c.observation, method="sbd", rng=0).kernel)
                    ["tail_similarity"])
        with monkeypatch.context() as m:
            m.setattr(classical, "sbd_sparsity", lambda problem: None)  # SBD's own λ
            res = extract(c.observation, method="sbd", rng=0)
        spectral.append(score(c.kernel, res.kernel)["tail_similarity"])
    assert np.median(held) >= np.median(spectral) + 0.01, (np.round(spectral, 3),
                                                          np.round(held, 3))
