"""Feenstra normalisation on a known I(V), and lock-in R/θ."""

import numpy as np
import pytest

from napari_qpi.analysis import feenstra, lockin_gain, lockin_polar


def test_feenstra_of_a_cubic_current_is_its_logarithmic_derivative():
    v = np.linspace(-100.0, 100.0, 41)  # mV, through 0
    a, b = 2.0, 3e-5
    current = a * v + b * v**3
    didv = a + 3 * b * v**2
    out = feenstra(didv, current, v, calibrate=False)
    exact = (a + 3 * b * v**2) / (a + b * v**2)
    away = v != 0
    np.testing.assert_allclose(out[away], exact[away], rtol=1e-12)
    assert out[~away] == pytest.approx(1.0, abs=0.01)  # the limit, from the neighbours


def test_a_lockin_channel_in_its_own_units_gives_the_dimensionless_ratio():
    """Lock-in volts beside a current in amperes and a bias in mV: the file's units
    (about 1e12 apart) and the lock-in's gain drop out; d ln I / d ln V remains."""
    v = np.linspace(-100.0, 100.0, 81)  # mV
    a, b = 2e-12, 6e-17  # A/mV, A/mV³
    current = a * v + b * v**3
    gain = 0.37 / 1e-12  # lock-in volts per (A/mV)
    rng = np.random.default_rng(0)
    didv = gain * (a + 3 * b * v**2) * (1 + 0.01 * rng.standard_normal(v.size))
    exact = (a + 3 * b * v**2) / (a + b * v**2)
    assert lockin_gain(didv, current, v) == pytest.approx(1 / gain, rel=0.01)
    out = feenstra(didv, current, v)
    away = v != 0
    np.testing.assert_allclose(out[away], exact[away], rtol=0.05)
    assert not np.allclose(feenstra(didv, current, v, calibrate=False)[away],
                           exact[away], rtol=0.5)  # as given, the units' ratio stays
    # the bias may come in any order (a sweep down)
    flip = slice(None, None, -1)
    np.testing.assert_allclose(feenstra(didv[flip], current[flip], v[flip]), out[flip])


def test_feenstra_cancels_a_per_pixel_setpoint_factor():
    v = np.linspace(-50.0, 50.0, 10)  # no V = 0 sample
    current = np.sinh(v / 30.0)  # any I(V)
    didv = np.cosh(v / 30.0) / 30.0
    scale = np.array([[0.5, 1.0], [2.0, 7.0]])  # tip height differs per pixel
    stack = didv[:, None, None] * scale
    out = feenstra(stack, current[:, None, None] * scale, v)
    assert out.shape == stack.shape
    np.testing.assert_allclose(out, out[:, :1, :1] * np.ones_like(scale), rtol=1e-12)


def test_gap_needs_broadening_and_broadening_keeps_it_finite():
    v = np.linspace(-20.0, 20.0, 41)
    current = np.where(np.abs(v) < 5, 0.0, np.sign(v) * (np.abs(v) - 5) ** 2)
    didv = np.gradient(current, v)
    with pytest.raises(ValueError, match="broadening"):
        feenstra(didv, current, v)
    out = feenstra(didv, current, v, broadening=4.0)
    assert np.all(np.isfinite(out)) and np.all(out[np.abs(v) < 4] < 1e-6)


def test_lockin_polar_amplitude_and_phase():
    r, theta = lockin_polar(np.array([3.0, 0.0]), np.array([4.0, -2.0]))
    np.testing.assert_allclose(r, [5.0, 2.0])
    np.testing.assert_allclose(theta, [np.degrees(np.arctan2(4, 3)), -90.0])
    _, rad = lockin_polar(0.0, 1.0, degrees=False)
    assert rad == pytest.approx(np.pi / 2)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="current"):
        feenstra(np.ones(5), np.ones(4), np.arange(5.0))
    with pytest.raises(ValueError, match="bias"):
        feenstra(np.ones(5), np.ones(5), np.zeros(5))
    with pytest.raises(ValueError, match="x .*y"):
        lockin_polar(np.ones(3), np.ones(4))
