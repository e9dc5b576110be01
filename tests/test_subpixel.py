"""A kernel shifted by the scatterers' common sub-pixel offset (extraction/subpixel.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi import simulate
from napari_qpi.extraction.fit import fit_map
from napari_qpi.extraction.operator import ConvOperator
from napari_qpi.extraction.quality import cv_residual
from napari_qpi.extraction.subpixel import centre_subpixel, shift_kernel


def smooth_kernel(k=33):
    r = np.hypot(*np.mgrid[-(k // 2):k // 2 + 1, -(k // 2):k // 2 + 1])
    return np.cos(0.9 * r) * np.exp(-((r / 5.0) ** 2))


def test_two_half_pixel_shifts_make_one_pixel():
    k = smooth_kernel()
    twice = shift_kernel(shift_kernel(k[None], (0.5, 0.0)), (0.5, 0.0))[0]
    inner = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(twice[inner], np.roll(k, 1, axis=0)[inner], atol=2e-3)
    np.testing.assert_allclose(shift_kernel(k, (0.0, 0.0)), k, atol=1e-12)


def half_pixel_map(offset, seed=0):
    """A map whose scatterers all sit ``offset`` px off their pixels (a pixel-area 2×
    resize puts them half-way), the pixel-centred kernel, and the true offset kernel."""
    sim = simulate(family="free_electron", shape=(128, 128), kernel_size=33,
                   n_scatterers=20, snr=np.inf, seed=seed)
    kernel = sim.kernel.astype(float)
    moved = shift_kernel(kernel, offset)
    x = np.zeros((128, 128))
    x[tuple(np.asarray(sim.positions).T)] = 1.0
    y = ConvOperator(moved.astype(np.float32), (128, 128)).forward(x).astype(float)
    rng = np.random.default_rng(seed)
    y = y + 0.2 * y.std() * rng.standard_normal(y.shape)
    return y - y.mean(axis=(-2, -1), keepdims=True), kernel, moved


@pytest.mark.parametrize("offset", [(0.5, 0.5), (0.0, 0.5)])
def test_a_common_half_pixel_offset_is_found_and_carried_by_the_kernel(offset):
    y, kernel, moved = half_pixel_map(offset)
    noise = np.array([0.2 * y.std()])
    fit = fit_map(y, kernel, noise=noise, merge=True)
    cv = cv_residual(y, kernel, noise=noise, rng=0, merge=True)
    new, cv_new, choice = centre_subpixel(y, fit, cv, noise=noise, rng=0)
    assert choice.kept and choice.offset == offset
    assert cv_new < cv and new.relative_residual < fit.relative_residual
    # the kept kernel is the offset one (up to the fit's amplitude)
    a, b = new.kernel.ravel(), moved.ravel()
    assert abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.99


def test_scatterers_on_pixels_keep_the_kernel():
    y, kernel, _ = half_pixel_map((0.0, 0.0), seed=1)
    noise = np.array([0.2 * y.std()])
    fit = fit_map(y, kernel, noise=noise, merge=True)
    cv = cv_residual(y, kernel, noise=noise, rng=0, merge=True)
    new, cv_new, choice = centre_subpixel(y, fit, cv, noise=noise, rng=0)
    assert not choice.kept and new is fit and cv_new == cv
    assert max(choice.gains.values()) <= 1.0


def test_the_centring_reports_each_fit_as_progress():
    """On a large grid each of its fits takes seconds: one event per fit, and the same
    answer as the plain function."""
    from napari_qpi.extraction.subpixel import OFFSETS, iter_centre_subpixel

    y, kernel, _ = half_pixel_map((0.5, 0.5))
    noise = np.array([0.2 * y.std()])
    fit = fit_map(y, kernel, noise=noise, merge=True)
    cv = cv_residual(y, kernel, noise=noise, rng=0, merge=True)
    gen = iter_centre_subpixel(y, fit, cv, noise=noise, rng=0)
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            new, cv_new, choice = stop.value
            break
    assert choice.kept  # a shift kept: its refit is reported too
    assert [e.step for e in events] == list(range(len(OFFSETS) + 2))
    assert {e.total for e in events} == {len(OFFSETS) + 2}
    plain = centre_subpixel(y, fit, cv, noise=noise, rng=0)
    assert plain[1] == cv_new and plain[2] == choice
