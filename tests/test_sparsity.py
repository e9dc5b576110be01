"""The noise level read from held-out blocks, and a scatterer map a physicist can trust:
on maps whose noise is not white the activation stays sparse, and the quality scores say
what a dense activation buys."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_qpi import extract, simulate
from napari_qpi.extraction.finish import scatterer_count
from napari_qpi.extraction.fit import fit_map, merge_scatterers
from napari_qpi.extraction.noise import noise_level
from napari_qpi.extraction.quality import holdout_mask
from napari_qpi.extraction.sparsity import choose_noise


def oversampled_map(seed: int = 0):
    """The physics on a 64² grid, interpolated 2× (cubic) like an instrument's
    oversampled map: no noise power near Nyquist. Kernel interpolated the same way."""
    sim = simulate(family="free_electron", shape=(64, 64), kernel_size=33,
                   n_scatterers=10, snr=5, seed=seed)
    obs = ndimage.zoom(sim.observation[0].astype(float), 2, order=3)
    k = ndimage.zoom(np.pad(sim.kernel[0].astype(float), 1), 2, order=3)[1:-1, 1:-1]
    k = k[:65, :65] if k.shape[0] > 65 else k
    k = k[: k.shape[0] - 1 + k.shape[0] % 2, : k.shape[0] - 1 + k.shape[0] % 2]
    return obs, k, len(sim.positions)


def test_holdout_is_blocks_of_the_requested_fraction():
    m = holdout_mask((128, 128), rng=3)
    held = 1 - m
    assert 0.05 < held.mean() < 0.15
    labels, n = ndimage.label(held)
    sizes = ndimage.sum_labels(held, labels, np.arange(1, n + 1))
    assert np.median(sizes) >= 32  # blocks, not lone pixels
    np.testing.assert_array_equal(holdout_mask((128, 128), rng=3), m)


def test_oversampled_map_spectral_noise_is_near_zero_but_the_choice_is_sparse():
    obs, k, n_true = oversampled_map()
    y = (obs - obs.mean())[None]
    y = y / np.sqrt((y**2).mean())
    spectral = np.array([noise_level(y[0])])
    assert spectral[0] < 0.15  # the white-noise estimate sees almost no noise
    naive = fit_map(y, k[None], noise=spectral)
    chosen = choose_noise(y, k[None], spectral=spectral, rng=0)
    fit = fit_map(y, k[None], noise=chosen.noise)
    assert chosen.source in ("held-out", "density cap")
    assert chosen.noise[0] > 2 * spectral[0]
    assert np.mean(fit.activation > 0) < 0.5 * np.mean(naive.activation > 0)
    assert scatterer_count(fit.activation) <= 3 * n_true


def test_white_noise_map_keeps_the_spectral_level_where_it_agrees():
    sim = simulate(family="square", shape=(96, 96), kernel_size=33, n_scatterers=12,
                   snr=5, seed=1)
    y = sim.observation[:1].astype(float)
    y = y - y.mean()
    y = y / np.sqrt((y**2).mean())
    spectral = np.array([noise_level(y[0])])
    chosen = choose_noise(y, sim.kernel[:1].astype(float), spectral=spectral, rng=0)
    truth = 1 / np.sqrt(1 + 5)  # the noise fraction of the RMS at SNR 5
    assert 0.5 * truth < chosen.noise[0] < 2 * truth


def test_extract_reports_density_count_and_the_zero_width_residual():
    obs, _, _ = oversampled_map(seed=2)
    res = extract(obs, method="power", kernel_size=33)
    info = res.info
    assert info["scatterers_found"] == scatterer_count(res.activation) > 0
    # the kernel explains more than a zero-width kernel, which copies pixels
    assert info["relative_residual"] < info["relative_residual_zero_width"]
    assert info["noise_source"] in ("held-out", "spectral", "density cap", "uninformative")
    assert info["noise_level_spectral"] < info["noise_level"]
    assert [s["step"] for s in info["preprocess"]] == ["background"]


def test_a_dense_activation_is_warned_about():
    obs, _, _ = oversampled_map(seed=4)
    res = extract(obs, method="power", sparsity=1e-3, preprocess=None)
    assert res.info["active_fraction"] > 0.05
    assert any("% of all pixels" in w for w in res.info["warnings"])
    assert res.info["preprocess"] == []


def test_a_long_stack_gets_one_level_for_every_slice():
    """The path runs on at most 8 slices; the level it picks, a fraction of each slice's
    RMS, is given to all of them (slices of different strength keep their ratio)."""
    sim = simulate(family="square", shape=(64, 64), kernel_size=17, n_scatterers=8,
                   energies=np.linspace(-40, 40, 12), snr=5, seed=3)
    y = sim.observation.astype(float)
    y = y - y.mean(axis=(-2, -1), keepdims=True)
    y[3] *= 4.0
    spectral = np.array([noise_level(s) for s in y])
    chosen = choose_noise(y, sim.kernel.astype(float), spectral=spectral, rng=0)
    assert chosen.noise.shape == (12,)
    rms = np.sqrt((y**2).mean(axis=(-2, -1)))
    if chosen.source != "spectral":
        np.testing.assert_allclose(chosen.noise / rms, chosen.fraction, rtol=1e-9)
    assert chosen.noise[3] > 2 * np.median(chosen.noise)


def test_merge_keeps_one_pixel_per_scatterer_and_drops_weak_groups():
    x = np.zeros((20, 20))
    x[2:4, 2:4] = [[1.0, 2.0], [0.5, 0.5]]  # one scatterer over four pixels: sum 4
    x[10, 10] = 3.0
    x[15, 4], x[16, 5] = 2.0, 1.5  # diagonal neighbours are one group: 3.5
    x[5, 15] = 0.3  # weaker than a fifth of the typical strong one (3.5)
    m = merge_scatterers(x)
    assert np.count_nonzero(m) == 3
    assert m[2, 3] == 4.0 and m[10, 10] == 3.0 and m[15, 4] == 3.5
    assert m[5, 15] == 0
    assert not merge_scatterers(np.zeros((5, 5))).any()


def test_merge_keeps_two_peaks_of_one_group_apart_and_one_blob_whole():
    x = np.zeros((20, 20))
    x[5, 3:12] = [1, 2, 3, 2, 1.5, 1, 2, 3.5, 1]  # one group, peaks 5 px apart
    x[14:16, 14:16] = [[2.0, 1.9], [1.8, 1.7]]  # one scatterer over adjacent pixels
    m = merge_scatterers(x)
    assert sorted(map(tuple, np.argwhere(m))) == [(5, 5), (5, 10), (14, 14)]
    np.testing.assert_allclose(m.sum(), x.sum())  # every active pixel joins one basin
    # peaks closer than the separation are one scatterer
    assert np.count_nonzero(merge_scatterers(x, separation=6)) == 2


def test_default_extraction_finds_both_scatterers_of_a_close_pair():
    """Two scatterers 5 px apart: their ℓ1 blobs touch, and both are scatterers (the
    whole-group rule kept one)."""
    pos = np.array([[30, 30], [30, 35], [80, 90], [95, 40], [50, 100]])
    sim = simulate(family="free_electron", positions=pos, snr=20, seed=0,
                   energies=[10.0])
    res = extract(sim.observation[0], method="two-stage")
    assert res.info["scatterers_found"] == 5
    assert sorted(map(tuple, np.argwhere(res.activation > 0))) == sorted(map(tuple, pos))


def test_merged_fit_marks_each_scatterer_of_an_oversampled_map_once():
    sim = simulate(family="free_electron", shape=(64, 64), kernel_size=33,
                   n_scatterers=10, snr=5, seed=5)
    obs = ndimage.zoom(sim.observation[0].astype(float), 2, order=3)
    k = ndimage.zoom(np.pad(sim.kernel[0].astype(float), 1), 2, order=3)[1:-2, 1:-2]
    y = (obs - obs.mean())[None]
    noise = np.array([0.3 * np.sqrt((y**2).mean())])
    plain = fit_map(y, k[None], noise=noise)
    merged = fit_map(y, k[None], noise=noise, merge=True)
    truth = 2 * np.asarray(sim.positions, float)
    found = np.argwhere(merged.activation > 0)
    assert len(found) <= 1.5 * len(truth) < np.count_nonzero(plain.activation)
    dist = np.sqrt(((found[:, None] - truth[None]) ** 2).sum(-1))
    assert np.mean(dist.min(0) <= 2) >= 0.8  # the true scatterers are found
    assert np.mean(dist.min(1) <= 2) >= 0.8  # and what is marked is a true scatterer
    assert merged.relative_residual < 0.9
