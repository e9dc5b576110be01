"""The power-spectrum floor method."""

import numpy as np
import pytest

from napari_qpi import extract, simulate
from napari_qpi.evaluation.metrics import qspace_correlation
from napari_qpi.extraction.methods.power import power_kernel


def test_power_kernel_matches_true_magnitude():
    sim = simulate(seed=0, snr=5)
    est = power_kernel(sim.observation, 65)
    assert est.shape == (8, 65, 65)
    np.testing.assert_allclose(est, est[:, ::-1, ::-1], atol=1e-12)  # centrosymmetric
    assert np.median(qspace_correlation(sim.kernel, est)) > 0.9


def test_power_method_via_extract():
    sim = simulate(family="square", seed=1, snr=20, energies=[-10.0, 10.0, 30.0])
    res = extract(sim.observation, method="power")
    assert np.median(qspace_correlation(sim.kernel, res.kernel)) > 0.9


def test_power_rejects_bad_kernel_size():
    with pytest.raises(ValueError, match="kernel_size"):
        power_kernel(np.zeros((1, 20, 20)), 21)


def test_torch_power_kernel_is_the_numpy_one():
    """The encoder's power-kernel input (models/features.py) is the ``power`` method."""
    import torch

    from napari_qpi.models.features import power_kernel as torch_power_kernel

    sim = simulate(family="square", seed=2, snr=5)
    ref = power_kernel(sim.observation, 65)
    ours = torch_power_kernel(torch.tensor(sim.observation, dtype=torch.float64), 65).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-4)
