"""Self-guidance: the scatterers a kernel marks in its own map, whatever the map's sign,
the same on one map (numpy, extraction) and on a batch (torch, training)."""

from __future__ import annotations

import numpy as np
import torch

from napari_qpi.evaluation.classes import class_bank
from napari_qpi.extraction.operator import ConvOperator
from napari_qpi.extraction.selfguide import energy_signs, polarity, self_guide
from napari_qpi.models.data import make_observations


def _maps(n=4, seed=3):
    bank = class_bank("held_out", n, seed=seed)
    maps, acts = make_observations(bank, torch.arange(n), 96,
                                   torch.Generator().manual_seed(1), snr_range=(8, 8))
    return maps.double().numpy(), acts.numpy() > 0, bank.windows.double().numpy()


def test_true_kernel_marks_the_true_scatterers_in_maps_of_either_sign():
    maps, true, kernels = _maps()
    for y, t, k in zip(maps, true, kernels):
        for sign in (1.0, -1.0):  # scatterers X ≥ 0: the kernel's sign follows the map
            assert polarity(sign * y[None], k[None]) == sign
            guide = self_guide(sign * y[None], k[None])
            hits = (guide * t).sum()
            assert hits >= 0.5 * t.sum() and hits >= 0.6 * guide.sum()


def test_batched_guides_equal_the_single_map_guides():
    maps, _, kernels = _maps()
    maps[1] *= -1
    batch = self_guide(torch.from_numpy(maps[:, None]).float(),
                       torch.from_numpy(kernels[:, None]).float())
    assert batch.shape == maps.shape
    for y, k, g in zip(maps, kernels, batch):
        single = self_guide(y[None], k[None])
        assert np.array_equal(single > 0, g.numpy() > 0)


def test_a_flat_map_gives_no_guide():
    _, _, kernels = _maps(1)
    flat = np.zeros((1, 64, 64))
    assert self_guide(flat, kernels[:1]) is None
    assert self_guide(torch.zeros(2, 1, 64, 64), torch.from_numpy(kernels[:1, None]).float()
                      .expand(2, 1, 65, 65)).sum() == 0


def test_each_energy_gets_the_sign_its_scatterers_respond_with():
    """A stack whose pattern changes sign with energy: read with one sign for every
    slice, the slices of the other sign are found; a map is left alone."""
    maps, true, kernels = _maps(1)
    k = kernels[0]
    x = true[0].astype(float)
    signs = np.array([1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
    scale = np.linspace(1.0, 0.5, len(signs))  # weaker at the end, as a band edge nears
    clean = ConvOperator((signs * scale)[:, None, None] * k, x.shape).forward(x)
    y = clean + 0.2 * clean.std() * np.random.default_rng(0).standard_normal(clean.shape)
    got = energy_signs(y, np.repeat(k[None], len(signs), 0))
    assert got.shape == (len(signs), 1, 1)
    assert np.array_equal(got.ravel(), signs)
    assert np.array_equal(energy_signs(-y, np.repeat(-k[None], len(signs), 0)).ravel(), signs)
    assert energy_signs(y[:1], k[None]).ravel().tolist() == [1.0]
