"""Preprocessing: each function does its one job and leaves the rest (and its input) alone."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi.io.preprocess import (
    crop,
    flatten_lines,
    normalize_slices,
    remove_bragg_peaks,
    subtract_plane,
    suppress_streaks,
)

ALL = [normalize_slices, subtract_plane, flatten_lines, suppress_streaks, remove_bragg_peaks,
       lambda d: crop(d, y=(1, 30), x=(2, 40))]


def qpi_pattern(n: int = 64, energies=(0.6, 0.8, 1.0), seed: int = 0) -> np.ndarray:
    """Friedel oscillations around a few scatterers, (E, n, n)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:n, :n]
    out = np.zeros((len(energies), n, n))
    for _ in range(6):
        cy, cx = rng.uniform(0, n, 2)
        r = np.hypot(y - cy, x - cx) + 1.0
        for i, k in enumerate(energies):
            out[i] += np.cos(2 * k * r) / r
    return out


def corr(a, b) -> float:
    a, b = np.ravel(a - np.mean(a)), np.ravel(b - np.mean(b))
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


@pytest.mark.parametrize("fn", ALL)
def test_input_untouched_and_shape_kept(fn):
    data = qpi_pattern(48) + 2.0
    before = data.copy()
    out = fn(data)
    np.testing.assert_array_equal(data, before)
    assert out is not data and out.ndim == 3 and out.shape[0] == 3
    out2 = fn(data[1])
    assert out2.ndim == 2
    if fn is not remove_bragg_peaks:  # peaks are found on the energy average
        np.testing.assert_allclose(out2, out[1], rtol=1e-6, atol=1e-9)
    assert fn(data.astype(np.float32)).dtype == np.float32


def test_normalize_undoes_setpoint_scaling():
    clean = qpi_pattern() + 3.0
    scaled = clean * np.array([0.5, 2.0, 7.0])[:, None, None]
    np.testing.assert_allclose(normalize_slices(scaled), normalize_slices(clean), rtol=1e-12)
    np.testing.assert_allclose(normalize_slices(scaled).mean(axis=(1, 2)), 1.0)
    z = normalize_slices(scaled, method="zscore")
    np.testing.assert_allclose(z.mean(axis=(1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=(1, 2)), 1.0)
    with pytest.raises(ValueError, match="zero mean"):
        normalize_slices(clean - clean.mean(axis=(1, 2), keepdims=True))
    with pytest.raises(ValueError, match="method"):
        normalize_slices(clean, method="max")


def test_plane_removal_zeroes_a_plane_and_keeps_the_pattern():
    y, x = np.mgrid[:40, :50]
    plane = 3.0 + 0.2 * x - 0.7 * y
    np.testing.assert_allclose(subtract_plane(plane), 0.0, atol=1e-10)
    clean = qpi_pattern(50)
    yy, xx = np.mgrid[:50, :50]
    tilted = clean + np.stack([0.5 * i + 0.1 * xx - 0.05 * i * yy for i in range(3)])
    assert corr(tilted, clean) < 0.5
    assert corr(subtract_plane(tilted), subtract_plane(clean)) > 0.999


@pytest.mark.parametrize("method", ["median", "linear"])
def test_line_flattening_removes_row_offsets_keeps_qpi(method):
    rng = np.random.default_rng(1)
    clean = qpi_pattern(64)
    offsets = rng.normal(0, 3.0, size=(1, 64, 1))
    slopes = rng.normal(0, 0.05, size=(1, 64, 1)) * np.arange(64) if method == "linear" else 0
    dirty = clean + offsets + slopes
    assert corr(dirty, clean) < 0.5
    flat = flatten_lines(dirty, method=method)
    for e in range(3):
        assert corr(flat[e], clean[e]) > 0.95
    # pure per-row offsets (and slopes) vanish entirely
    np.testing.assert_allclose(flatten_lines(np.zeros_like(clean) + offsets + slopes,
                                             method=method), 0.0, atol=1e-9)


def test_streak_suppression():
    clean = qpi_pattern(64)
    dirty = clean.copy()
    dirty[:, 20, 10:30] += 5.0  # a tip change for 20 pixels of one line
    dirty[:, 40, 50] += 5.0  # a single spike: not a streak, left alone
    fixed = suppress_streaks(dirty)
    err_before = np.abs(dirty[:, 20] - clean[:, 20]).max()
    err_after = np.abs(fixed[:, 20] - clean[:, 20]).max()
    assert err_after < err_before / 5
    assert fixed[0, 40, 50] == dirty[0, 40, 50]
    unchanged = np.mean(suppress_streaks(clean) != clean)
    assert unchanged < 0.01  # a clean pattern is barely touched


def test_bragg_filter_removes_lattice_keeps_rest():
    clean = qpi_pattern(64)
    y, x = np.mgrid[:64, :64]
    lattice = sum(0.8 * np.cos(2 * np.pi * (kx * x + ky * y) / 64)
                  for kx, ky in [(21, 0), (-10, 18), (10, 18)])  # hexagon-ish, |q| ~ 0.65
    dirty = clean + lattice
    # a lattice periodic on the map: the FFT notch is exact (the default local
    # subtraction, for the lattices a notch leaks: tests/test_lattice_pipeline.py)
    for method in ("notch", "local"):
        filtered = remove_bragg_peaks(dirty, n_peaks=6, method=method)
        lattice_left = np.abs(np.fft.fft2(filtered - clean)[:, 0, 21]).max()
        assert lattice_left < 0.01 * np.abs(np.fft.fft2(lattice)[0, 21])
    notched = remove_bragg_peaks(dirty, n_peaks=6, method="notch")
    assert corr(notched, clean) > 0.98
    assert np.abs(notched - clean).max() < 0.25 * np.abs(clean).max()
    # nothing to remove: output equals input
    np.testing.assert_allclose(remove_bragg_peaks(clean), clean, atol=1e-12)


def test_crop():
    data = np.arange(2 * 5 * 6, dtype=float).reshape(2, 5, 6)
    out = crop(data, y=(1, 4), x=(2, 6))
    np.testing.assert_array_equal(out, data[:, 1:4, 2:6])
    np.testing.assert_array_equal(crop(data[0], x=(0, 3)), data[0, :, :3])
    with pytest.raises(ValueError, match="x="):
        crop(data, x=(4, 2))
    with pytest.raises(ValueError, match="y="):
        crop(data, y=(0, 9))


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        subtract_plane(np.ones(5))
    with pytest.raises(ValueError, match="real"):
        flatten_lines(np.ones((3, 3), complex))
