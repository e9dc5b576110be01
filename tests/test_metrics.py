"""Kernel metrics (primer §5): known values and invariances."""

import numpy as np
import pytest

from napari_qpi import simulate
from napari_qpi.evaluation.metrics import (
    aligned_tail_similarity,
    core_mask,
    kernel_similarity,
    max_shift,
    paper_mae,
    paper_rmse,
    qspace_correlation,
    relative_residual,
    tail_similarity,
)


@pytest.fixture(scope="module")
def kernel():
    return simulate(seed=0, shape=(80, 80), n_scatterers=2).kernel  # (8, 65, 65)


def _shift(x, dy, dx):
    """Shift with zero fill (no wrap)."""
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_identical_is_one(kernel):
    np.testing.assert_allclose(kernel_similarity(kernel, kernel), 1, atol=1e-9)
    np.testing.assert_allclose(tail_similarity(kernel, kernel), 1, atol=1e-9)
    np.testing.assert_allclose(qspace_correlation(kernel, kernel), 1, atol=1e-9)
    np.testing.assert_allclose(paper_rmse(kernel, kernel), 0, atol=1e-12)
    np.testing.assert_allclose(paper_mae(kernel, kernel), 0, atol=1e-12)


def test_batched_matches_single(kernel):
    est = kernel + 0.01 * np.random.default_rng(0).normal(size=kernel.shape)
    batch = kernel_similarity(kernel, est)
    assert batch.shape == (8,)
    assert isinstance(kernel_similarity(kernel[3], est[3]), float)
    np.testing.assert_allclose(batch[3], kernel_similarity(kernel[3], est[3]))
    np.testing.assert_allclose(tail_similarity(kernel, est)[5], tail_similarity(kernel[5], est[5]))


def test_sign_and_scale_invariance(kernel):
    np.testing.assert_allclose(kernel_similarity(kernel, -7.5 * kernel), 1, atol=1e-9)
    np.testing.assert_allclose(tail_similarity(kernel, -0.01 * kernel), 1, atol=1e-9)
    np.testing.assert_allclose(qspace_correlation(kernel, -3 * kernel), 1, atol=1e-9)


def test_shift_range(kernel):
    k = kernel.shape[-1]
    s = max_shift(k)
    assert s == 8
    a = kernel[0]
    # exactly the same content, moved within the allowed range: only edge pixels lost
    inside = kernel_similarity(a, _shift(a, s, -s))
    assert inside > 0.97
    assert kernel_similarity(a, _shift(a, 2, 1)) > 0.99
    # beyond the range the best alignment is out of reach
    beyond = kernel_similarity(a, _shift(a, 3 * s, 0))
    assert beyond < inside - 0.2
    # a restricted search loses the alignment
    assert kernel_similarity(a, _shift(a, 4, 0), shift=2) < kernel_similarity(a, _shift(a, 4, 0))


def test_tail_small_shift(kernel):
    # the core is masked in each kernel's own frame before shifting: 1 px costs little
    assert np.all(tail_similarity(kernel, _shift(kernel, 1, 0)) > 0.9)


def test_zero_fill_not_wrap():
    a = np.zeros((17, 17))
    a[8, 0] = 1.0
    b = np.zeros((17, 17))
    b[8, 16] = 1.0  # neighbours only under a wrap-around shift
    assert kernel_similarity(a, b) < 1e-12


def test_blob_has_no_tail(kernel):
    k = kernel.shape[-1]
    r = np.arange(k) - k // 2
    blob = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2)) * core_mask(k)
    ks = kernel_similarity(kernel, blob)
    ts = tail_similarity(kernel, blob)
    assert np.median(ks) > 0.5
    np.testing.assert_allclose(ts, 0, atol=1e-12)


def test_aligned_tail_forgives_only_the_labelling(kernel):
    a = kernel[2]
    # a dimer centred on its first site, and the same dimer centred on its second
    dimer = a + 0.8 * _shift(a, 3, 1)
    other = _shift(dimer, -3, -1)
    assert tail_similarity(dimer, other) < 0.85  # the other site's core stays in one
    assert aligned_tail_similarity(dimer, other) > 0.97
    np.testing.assert_allclose(aligned_tail_similarity(kernel, -4 * kernel), 1, atol=1e-9)
    # batched like the others, never below the headline on a pure shift within range
    est = kernel + 0.01 * np.random.default_rng(1).normal(size=kernel.shape)
    batch = aligned_tail_similarity(kernel, est)
    assert batch.shape == (8,)
    np.testing.assert_allclose(batch[4], aligned_tail_similarity(kernel[4], est[4]))
    assert np.all(batch >= tail_similarity(kernel, est) - 1e-9)
    # what it does not forgive: a blob (its own core is cut wherever it is aligned),
    # another kernel, a shift beyond the search
    k = kernel.shape[-1]
    r = np.arange(k) - k // 2
    blob = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2)) * core_mask(k)
    np.testing.assert_allclose(aligned_tail_similarity(kernel, blob), 0, atol=1e-12)
    noise = np.random.default_rng(2).normal(size=a.shape)
    assert aligned_tail_similarity(a, noise) < 0.2
    assert aligned_tail_similarity(a, _shift(a, 20, 0)) < 0.4


def test_paper_errors_hand_case():
    a = np.zeros((3, 3))
    a[1, 1] = 1
    b = np.eye(3)  # two pixels differ by 1 after min-max scaling
    np.testing.assert_allclose(paper_rmse(a, b), 2 * np.sqrt(2 / 9))
    np.testing.assert_allclose(paper_mae(a, b), 2 * 2 / 9)
    # min-max scaling: offset and positive scale do not matter, sign does
    np.testing.assert_allclose(paper_rmse(a, 5 * b + 3), 2 * np.sqrt(2 / 9))
    assert paper_rmse(a, -a) > 1.0


def test_qspace_shift_invariant(kernel):
    a = kernel[2]
    b = np.roll(a, (5, -3), axis=(0, 1))  # circular shift: |FFT| unchanged
    np.testing.assert_allclose(qspace_correlation(a, b), 1, atol=1e-9)
    noise = np.random.default_rng(1).normal(size=a.shape)
    assert qspace_correlation(a, noise) < 0.5


def test_relative_residual():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(4, 32, 32)) + 10.0
    assert relative_residual(np.zeros_like(y), y) == 0.0
    resid = y - y.mean(axis=(-2, -1), keepdims=True)
    np.testing.assert_allclose(relative_residual(resid, y), 1.0)
    with pytest.raises(ValueError, match="same shape"):
        relative_residual(y[0], y)


def test_shape_errors():
    with pytest.raises(ValueError, match="odd"):
        kernel_similarity(np.ones((4, 4)), np.ones((4, 4)))
    with pytest.raises(ValueError, match="differ in shape"):
        kernel_similarity(np.ones((5, 5)), np.ones((7, 7)))
