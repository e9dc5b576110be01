"""The convolution operator (numpy and torch) and the solvers built on it."""

import numpy as np
import pytest
import torch

from napari_qpi import simulate
from napari_qpi.extraction.fista import sparse_activation
from napari_qpi.extraction.metrics import kernel_similarity
from napari_qpi.extraction.operator import ConvOperator
from napari_qpi.extraction.torch_operator import TorchConvOperator
from napari_qpi.extraction.wiener import wiener_kernel

CASES = [(3, 1, (16, 16)), (5, 4, (20, 33)), (9, 2, (40, 24)), (17, 3, (31, 45))]


def _power_norm(op, shape, rng, n_iter=200):
    """‖AᵀA‖ by power iteration."""
    x = rng.normal(size=shape)
    lam = 0.0
    for _ in range(n_iter):
        y = op.adjoint(op.forward(x))
        lam = float(np.linalg.norm(y))
        x = y / lam
    return lam


@pytest.mark.parametrize(("k", "e", "shape"), CASES)
def test_adjointness(k, e, shape):
    rng = np.random.default_rng(k)
    kernel = rng.normal(size=(e, k, k))
    op = ConvOperator(kernel, shape)
    x = rng.normal(size=shape)
    y = rng.normal(size=(e, *shape))
    lhs = np.vdot(op.forward(x), y)
    rhs = np.vdot(x, op.adjoint(y))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


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
    assert op.lipschitz() < 2.0 * true  # and not uselessly loose


@pytest.mark.parametrize(("k", "e", "shape"), CASES)
def test_torch_twin_matches_numpy(k, e, shape):
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(e, k, k))
    x = rng.normal(size=shape)
    y = rng.normal(size=(e, *shape))
    op = ConvOperator(kernel, shape)
    top = TorchConvOperator(torch.from_numpy(kernel), shape)
    np.testing.assert_allclose(top.forward(torch.from_numpy(x)).numpy(), op.forward(x),
                               atol=1e-10)
    np.testing.assert_allclose(top.adjoint(torch.from_numpy(y)).numpy(), op.adjoint(y),
                               atol=1e-10)
    np.testing.assert_allclose(float(top.lipschitz()), op.lipschitz(), rtol=1e-10)


@pytest.mark.parametrize(("k", "e", "shape"), CASES)
def test_torch_adjointness_batched(k, e, shape):
    g = torch.Generator().manual_seed(k)
    kernel = torch.randn(3, e, k, k, generator=g, dtype=torch.float64)
    x = torch.randn(3, *shape, generator=g, dtype=torch.float64)
    y = torch.randn(3, e, *shape, generator=g, dtype=torch.float64)
    op = TorchConvOperator(kernel, shape)
    lhs = (op.forward(x) * y).sum(dim=(-3, -2, -1))
    rhs = (x * op.adjoint(y)).sum(dim=(-2, -1))
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)
    # the kernel-side adjoint: ⟨K ⊛ X, Y⟩ = ⟨K, kernel_adjoint(Y, X)⟩
    rhs_k = (kernel * op.kernel_adjoint(y, x)).sum(dim=(-3, -2, -1))
    torch.testing.assert_close(lhs, rhs_k, rtol=1e-10, atol=1e-10)
    assert op.lipschitz().shape == (3,)


def test_fista_recovers_support():
    sim = simulate(seed=3, shape=(64, 64), kernel_size=21, n_scatterers=2)
    kernel = sim.kernel / np.linalg.norm(sim.kernel)
    rng = np.random.default_rng(0)
    x = np.zeros((64, 64))
    flat = rng.choice(64 * 64, 12, replace=False)
    x.flat[flat] = rng.uniform(1.0, 2.0, 12)
    y = ConvOperator(kernel, x.shape).forward(x)
    y = y + 0.01 * y.std() * rng.normal(size=y.shape)
    est = sparse_activation(y, kernel, sparsity=0.05, num_iter=300)
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
