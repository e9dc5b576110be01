"""The one convolution operator (numpy and torch backends) and the FISTA built on it."""

import numpy as np
import pytest
import torch

from napari_qpi import simulate
from napari_qpi.evaluation.metrics import kernel_similarity
from napari_qpi.extraction.fista import fista
from napari_qpi.extraction.methods.wiener import wiener_kernel
from napari_qpi.extraction.operator import ConvOperator

# the last: a kernel wider than the map (the latent fit's working window on a small map),
# where a grid of map + k // 2 is smallest against the textbook map + k − 1
CASES = [(3, 1, (16, 16)), (5, 4, (20, 33)), (9, 2, (40, 24)), (17, 3, (31, 45)),
         (41, 2, (24, 30))]
BACKENDS = ["numpy", "torch64", "torch32"]


def _arr(a, backend):
    if backend == "numpy":
        return a
    return torch.from_numpy(a).to(torch.float64 if backend == "torch64" else torch.float32)


def _np(a):
    return a.double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _power_norm(op, shape, rng, n_iter=200):
    """‖AᵀA‖ by power iteration."""
    x = rng.normal(size=shape)
    lam = 0.0
    for _ in range(n_iter):
        y = op.adjoint(op.forward(x))
        lam = float(np.linalg.norm(y))
        x = y / lam
    return lam


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("k", "e", "shape"), CASES)
def test_adjointness(k, e, shape, backend):
    """⟨A x, y⟩ = ⟨x, Aᵀ y⟩ and ⟨K ⊛ X, Y⟩ = ⟨K, kernel_adjoint(Y, X)⟩, batched."""
    rng = np.random.default_rng(k)
    kernel = _arr(rng.normal(size=(2, e, k, k)), backend)
    x = _arr(rng.normal(size=(2, *shape)), backend)
    y = _arr(rng.normal(size=(2, e, *shape)), backend)
    op = ConvOperator(kernel, shape)
    lhs = _np((op.forward(x) * y).sum((-3, -2, -1)))
    rhs = _np((x * op.adjoint(y)).sum((-2, -1)))
    rhs_k = _np((kernel * op.kernel_adjoint(y, x)).sum((-3, -2, -1)))
    tol = 1e-4 if backend == "torch32" else 1e-10
    np.testing.assert_allclose(lhs, rhs, rtol=tol, atol=tol * np.abs(lhs).max())
    np.testing.assert_allclose(lhs, rhs_k, rtol=tol, atol=tol * np.abs(lhs).max())
    # the kernel-side forward is the same map
    np.testing.assert_allclose(_np(op.kernel_forward(kernel, x)), _np(op.forward(x)),
                               atol=tol * 10)
    assert np.shape(_np(op.lipschitz())) == (2,)


@pytest.mark.parametrize(("k", "e", "shape"), CASES)
def test_forward_is_linear_same_convolution(k, e, shape):
    """A delta at pixel p puts the kernel window centred on p, cut by the map edge."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(e, k, k))
    op = ConvOperator(kernel, shape)
    x = np.zeros(shape)
    x[1, shape[1] - 2] = 1.0  # near a corner: must not wrap around
    y = op.forward(x)
    r = k // 2
    ref = np.zeros((e, shape[0] + 2 * r, shape[1] + 2 * r))
    ref[:, 1 : 1 + k, shape[1] - 2 : shape[1] - 2 + k] = kernel
    np.testing.assert_allclose(y, ref[:, r : r + shape[0], r : r + shape[1]], atol=1e-10)


@pytest.mark.parametrize(("k", "e", "shape"), CASES)
def test_lipschitz_bounds_normal_operator(k, e, shape):
    rng = np.random.default_rng(1)
    op = ConvOperator(rng.normal(size=(e, k, k)), shape)
    true = _power_norm(op, shape, rng)
    assert op.lipschitz() >= true * (1 - 1e-6)
    if k <= min(shape):  # a kernel wider than the map acts only in part: the bound is loose
        assert op.lipschitz() < 2.0 * true  # and not uselessly loose


@pytest.mark.parametrize(("k", "e", "shape"), CASES)
def test_torch_and_numpy_backends_agree(k, e, shape):
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(e, k, k))
    x = rng.normal(size=shape)
    y = rng.normal(size=(e, *shape))
    op = ConvOperator(kernel, shape)
    top = ConvOperator(torch.from_numpy(kernel), shape)
    np.testing.assert_allclose(top.forward(torch.from_numpy(x)).numpy(), op.forward(x),
                               atol=1e-10)
    np.testing.assert_allclose(top.adjoint(torch.from_numpy(y)).numpy(), op.adjoint(y),
                               atol=1e-10)
    np.testing.assert_allclose(float(top.lipschitz()), op.lipschitz(), rtol=1e-10)
    # with_kernel keeps the grid
    assert op.with_kernel(kernel[:, 1:-1, 1:-1]).grid == op.grid


@pytest.mark.parametrize(("k", "e", "shape"), CASES)
def test_the_small_grid_agrees_with_the_full_linear_one(k, e, shape):
    """A grid of map + k // 2 gives the map's pixels and the kernel windows of the
    textbook map + k − 1 grid: nothing read back has wrapped around."""
    from napari_qpi.extraction.operator import fft_grid

    rng = np.random.default_rng(3)
    kernel, x, y = (rng.normal(size=(e, k, k)), rng.normal(size=shape),
                    rng.normal(size=(e, *shape)))
    small = ConvOperator(kernel, shape)
    full = ConvOperator(kernel, shape, fft_grid(shape, k, full=True))
    assert np.prod(small.grid) < np.prod(full.grid) or k < 5  # the point: fewer points
    for f in ("forward", "adjoint"):
        arg = x if f == "forward" else y
        np.testing.assert_allclose(getattr(small, f)(arg), getattr(full, f)(arg), atol=1e-9)
    np.testing.assert_allclose(small.kernel_adjoint(y, x), full.kernel_adjoint(y, x),
                               atol=1e-9)
    with pytest.raises(ValueError, match="grid"):  # a wider window would read wrapped values
        small.kernel_adjoint(y, x, size=2 * (small.grid[0] - shape[0]) + 3)


def test_operator_rejects_even_kernels():
    with pytest.raises(ValueError, match="odd"):
        ConvOperator(np.ones((1, 4, 4)), (10, 10))


def test_fista_recovers_support():
    sim = simulate(seed=3, shape=(64, 64), kernel_size=21, n_scatterers=2)
    kernel = sim.kernel / np.linalg.norm(sim.kernel)
    rng = np.random.default_rng(0)
    x = np.zeros((64, 64))
    flat = rng.choice(64 * 64, 12, replace=False)
    x.flat[flat] = rng.uniform(1.0, 2.0, 12)
    y = ConvOperator(kernel, x.shape).forward(x)
    y = y - y.mean(axis=(-2, -1), keepdims=True)
    y = y + 0.01 * y.std() * rng.normal(size=y.shape)
    op = ConvOperator(kernel, x.shape)
    lam = 0.05 * float(np.abs(op.adjoint(y)).max())
    est = fista(op, y, sparsity=lam, num_iter=300)
    found = np.argsort(est.ravel())[-12:]
    assert set(found) == set(flat)
    assert np.all(est >= 0)
    # amplitudes up to the ℓ1 shrinkage: same ordering, same scale
    assert np.corrcoef(est.flat[flat], x.flat[flat])[0, 1] > 0.95
    np.testing.assert_allclose(est.flat[flat], x.flat[flat], rtol=0.3)


def test_wiener_recovers_kernel_at_high_snr():
    sim = simulate(seed=1, snr=1e4)
    obs = sim.observation - sim.observation.mean(axis=(-2, -1), keepdims=True)
    est = wiener_kernel(obs, sim.positions, 65)
    assert est.shape == sim.kernel.shape
    sims = kernel_similarity(sim.kernel, est)
    assert np.min(sims) > 0.9


@pytest.mark.parametrize("backend", ["numpy", "torch64"])
def test_fista_backends_agree_and_mask_holds_pixels_out(backend):
    rng = np.random.default_rng(4)
    kernel = rng.normal(size=(2, 7, 7))
    x = np.zeros((40, 40))
    x[rng.integers(0, 40, 10), rng.integers(0, 40, 10)] = 1.0
    y = ConvOperator(kernel, (40, 40)).forward(x)
    mask = (rng.random((40, 40)) > 0.2).astype(float)
    op = ConvOperator(_arr(kernel, backend), (40, 40))
    est = _np(fista(op, _arr(y, backend), sparsity=0.01, num_iter=300,
                    mask=_arr(mask, backend)))
    ref = fista(ConvOperator(kernel, (40, 40)), y, sparsity=0.01, num_iter=300, mask=mask)
    np.testing.assert_allclose(est, ref, atol=1e-8)
    # 20 % of the pixels held out and still every scatterer found
    assert np.abs(est - x).max() < 0.1


def test_float32_numpy_operator_computes_in_float32_and_agrees_with_float64():
    """A float32 kernel keeps float32 FFTs (the fits' speed); its numbers agree with the
    float64 operator's to float32 precision, and a float64 kernel stays float64."""
    rng = np.random.default_rng(3)
    kern = rng.normal(size=(3, 9, 9))
    x = rng.random((40, 31))
    y = rng.normal(size=(3, 40, 31))
    op64 = ConvOperator(kern, x.shape)
    op32 = ConvOperator(kern.astype(np.float32), x.shape)
    assert op64.forward(x).dtype == np.float64 and op32.forward(x).dtype == np.float32
    for f64, f32 in ((op64.forward(x), op32.forward(x)), (op64.adjoint(y), op32.adjoint(y))):
        assert np.abs(f64 - f32).max() < 1e-5 * np.abs(f64).max()
    # the activation FISTA finds agrees as well, with one λ per batch element
    batch = np.stack([kern, 2 * kern])
    lam = np.array([0.5, 1.0])
    xs64 = fista(ConvOperator(batch, x.shape), y, sparsity=lam, num_iter=30)
    xs32 = fista(ConvOperator(batch.astype(np.float32), x.shape), y, sparsity=lam,
                 num_iter=30)
    assert np.abs(xs64 - xs32).max() < 1e-4 * np.abs(xs64).max()
    # each batch element with its own λ is the fit of that element alone
    alone = fista(ConvOperator(2 * kern, x.shape), y, sparsity=1.0, num_iter=30)
    np.testing.assert_allclose(xs64[1], alone, atol=1e-10 * np.abs(alone).max())
