"""The networks at inference: the kernel turns with the map (rotation averaging)."""

import numpy as np
import pytest

from napari_qpi import simulate
from napari_qpi.models.inference import predict
from napari_qpi.progress import drain


@pytest.fixture(scope="module")
def maps():
    sim = simulate(seed=3, energies=np.array([0.0, 20.0]), snr=5.0)
    return sim.observation.astype(np.float32), sim.positions


def _turn(a, r=1):
    return np.ascontiguousarray(np.rot90(a, r, axes=(-2, -1)))


@pytest.mark.parametrize("method", ["two-stage", "one-step"])
@pytest.mark.parametrize("guided", [False, True])
def test_kernel_turns_with_the_map(maps, method, guided):
    y, pos = maps
    guide = None
    if guided:
        guide = np.zeros(y.shape[-2:], np.float32)
        guide[pos[:, 0].astype(int), pos[:, 1].astype(int)] = 1
    k = drain(predict(y, method=method, guide=guide))[0]
    for r in (1, 2, 3):
        kr = drain(predict(_turn(y, r), method=method,
                           guide=None if guide is None else _turn(guide, r)))[0]
        np.testing.assert_allclose(kr, _turn(k, r), atol=1e-5)


@pytest.mark.parametrize("method", ["two-stage", "one-step"])
def test_rectangular_maps_turn_too(maps, method):
    # a quarter turn swaps the sides: the views cannot share one batch
    y, _ = maps
    y = np.ascontiguousarray(y[:, :96, :])
    k, unc, _ = drain(predict(y, method=method))
    assert k.shape == (2, 65, 65) and np.all(np.isfinite(k))
    kr = drain(predict(_turn(y), method=method))[0]
    np.testing.assert_allclose(kr, _turn(k), atol=1e-5)
    if method == "two-stage":
        assert unc.shape == k.shape


def test_views_are_averaged_and_the_latent_is_the_map_as_given(maps):
    y, _ = maps
    one, _, z1 = drain(predict(y, rotations=1))
    four, unc, z4 = drain(predict(y, rotations=4))
    np.testing.assert_allclose(z4, z1, atol=1e-6)
    # the mean of the four turned-back single-view kernels, each of unit norm
    views = [_turn(drain(predict(_turn(y, r), rotations=1))[0], -r) for r in range(4)]
    mean = np.mean([v / np.linalg.norm(v, axis=(-2, -1), keepdims=True) for v in views], 0)
    np.testing.assert_allclose(four, mean, atol=1e-5)
    assert not np.allclose(four, one / np.linalg.norm(one, axis=(-2, -1), keepdims=True),
                           atol=1e-3)
    assert unc.shape == four.shape and np.all(unc >= 0) and unc.max() > 0


def test_uncertainty_is_seeded(maps):
    y, _ = maps
    a = drain(predict(y, seed=1))[1]
    b = drain(predict(y, seed=1))[1]
    c = drain(predict(y, seed=2))[1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_without_uncertainty_the_kernel_and_latent_are_unchanged(maps):
    y, _ = maps
    k, unc, z = drain(predict(y))
    k0, unc0, z0 = drain(predict(y, uncertainty=False))
    assert unc is not None and unc0 is None
    np.testing.assert_allclose(k0, k, rtol=0, atol=1e-6 * np.abs(k).max())
    np.testing.assert_allclose(z0, z, rtol=0, atol=1e-5 * np.abs(z).max())


def test_rotations_must_be_a_divisor_of_a_full_turn(maps):
    with pytest.raises(ValueError, match="rotations"):
        drain(predict(maps[0], rotations=3))
