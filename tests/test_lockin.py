"""The lock-in's pole read from a residual, and the kernel moved by its delay
(extraction/lockin.py, extraction/finish.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_qpi import extract, simulate
from napari_qpi.extraction.lockin import POLE_FLOOR, lockin_delay, lockin_pole
from napari_qpi.physics.instrument import _double, lowpass_x, through_instrument


@pytest.mark.parametrize("tau", [0.8, 1.5, 2.5])
def test_the_pole_is_read_from_noise_the_lockin_filtered(tau):
    # four 128² slices of white noise: the estimate spreads by about ±0.1 over draws
    noise = np.random.default_rng(int(10 * tau)).standard_normal((4, 128, 128))
    a = np.exp(-1 / tau)
    assert lockin_pole(lowpass_x(noise, tau)) == pytest.approx(a, abs=0.12)
    # an interpolated (oversampled) map, then the lock-in
    coarse = np.random.default_rng(1).standard_normal((2, 64, 64))
    fine = np.stack([_double(s, 128, 128, 0.5) for s in coarse])
    assert lockin_pole(lowpass_x(fine, tau)) == pytest.approx(a, abs=0.15)


def test_no_pole_where_the_noise_is_the_same_along_x_and_y():
    rng = np.random.default_rng(2)
    white = rng.standard_normal((4, 128, 128))
    smooth = ndimage.gaussian_filter(white, (0, 1.2, 1.2))
    f = np.hypot(np.fft.fftfreq(128)[:, None], np.fft.rfftfreq(128)[None, :])
    f[0, 0] = np.inf
    pink = np.fft.irfft2(np.fft.rfft2(white) / np.sqrt(f), s=(128, 128))
    for residual in (white, smooth, pink, white[0]):
        assert lockin_pole(residual) < POLE_FLOOR
    # a Y-axis filter is not the lock-in's
    assert lockin_pole(np.swapaxes(lowpass_x(np.swapaxes(white, 1, 2), 2.0), 1, 2)) == 0.0
    assert lockin_pole(np.zeros((8, 8))) == 0.0


def test_the_delay_is_the_filters_lag_at_the_kernels_own_wavevectors():
    """A kernel of long waves is delayed by the mean lag a/(1 − a), one of short waves
    by less; no pole, no delay."""
    yy, xx = np.mgrid[-32:33, -32:33]
    broad = np.exp(-(xx**2 + yy**2) / (2 * 6.0**2))
    ripples = np.cos(1.2 * np.hypot(xx, yy)) * np.exp(-np.hypot(xx, yy) / 12)
    assert lockin_delay(broad, 0.5) == pytest.approx(1.0, abs=0.05)
    assert 0.3 < lockin_delay(ripples, 0.5) < 0.8
    assert lockin_delay(ripples, 0.0) == 0.0


def test_the_scatterer_map_marks_the_defects_not_their_delayed_patterns():
    """A map through a lock-in of τ = 1.85 px (pole 0.58, mean lag 1.4 px): blind, the
    kernel is moved by the delay read from the residual, so the found scatterers sit on
    the true ones, where without the step they sat a pixel ahead."""
    sim = simulate(seed=0, energies=np.array([10.0]), snr=5.0)
    m = through_instrument(sim.observation, sim.kernel, sim.positions, ["lockin"], rng=0)
    res = extract(m.observation, method="two-stage")
    assert res.info["lockin_pole"] == pytest.approx(np.exp(-1 / 1.85), abs=0.1)
    found = np.argwhere(res.activation > 0)
    offsets = [found[np.argmin(np.abs(found - p).max(1))] - p for p in m.positions]
    offsets = np.array([d for d in offsets if np.abs(d).max() <= 3])
    assert len(offsets) >= 0.9 * len(m.positions)
    assert np.median(offsets[:, 1]) == 0 and np.median(offsets[:, 0]) == 0
    # with the positions given the kernel stays centred on them
    guided = extract(m.observation, method="two-stage", positions=m.positions)
    assert guided.info["lockin_delay"] == 0.0


def test_the_dock_says_where_the_kernel_was_moved_for_the_lockin():
    from napari_qpi.napari.jobs import summary

    sim = simulate(seed=0, energies=np.array([10.0]), snr=5.0)
    m = through_instrument(sim.observation, sim.kernel, sim.positions, ["lockin"], rng=0)
    res = extract(m.observation, method="power")
    assert res.info["lockin_delay"] > 0.3
    text = summary(res, {})
    assert f"kernel moved {res.info['lockin_delay']:.1f} px along x" in text
    plain = extract(sim.observation, method="power")
    assert plain.info["lockin_delay"] == 0.0 and "lock-in" not in summary(plain, {})
