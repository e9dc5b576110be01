"""Dispersion fits against the simulator's free-electron band and exact q(E) data."""

import numpy as np
import pytest

from napari_qpi import simulate
from napari_qpi.analysis import (
    fit_dispersion,
    fit_kernel_dispersion,
    linecut,
    magnitude_spectrum,
    q_steps,
    ring_wavevectors,
)
from napari_qpi.physics.bands import HBAR2_2ME, default_band

BAND = default_band("free_electron")  # Ag(111)-like
M_EFF, E0 = BAND.params["m_eff"], BAND.params["band_bottom"]
K_F = np.sqrt(M_EFF * E0 / HBAR2_2ME)
HBAR_V_F = 2 * HBAR2_2ME * K_F / M_EFF
ENERGIES = np.linspace(-30.0, 60.0, 10)


@pytest.fixture(scope="module")
def kernel():
    sim = simulate(family="free_electron", energies=ENERGIES, shape=(65, 65),
                   kernel_size=65, n_scatterers=1, snr=np.inf, seed=0)
    return sim.kernel.astype(float), sim.pixel_size


def test_parabolic_fit_recovers_the_simulated_band(kernel):
    k, pixel_size = kernel
    fit, q, q_err = fit_kernel_dispersion(k, ENERGIES, pixel_size)
    p, e = fit.params, fit.errors
    # measured (65 px window, η = 20 meV): m* 0.407 (+1.7 %), E₀ 65.3 meV (+0.5 %)
    assert p["m_eff"] == pytest.approx(M_EFF, rel=0.03)
    assert p["band_bottom"] == pytest.approx(E0, rel=0.03)
    assert p["k_F"] == pytest.approx(K_F, rel=0.02)
    assert p["hbar_v_F"] == pytest.approx(HBAR_V_F, rel=0.03)
    assert 0 < e["m_eff"] < 0.02 and 0 < e["band_bottom"] < 3.0
    # single energies: within 5 % (the lowest, where the 20 meV broadening matters most,
    # read 4 % low on this 65 px window); the fit over all of them is closer
    np.testing.assert_allclose(q, 2 * np.sqrt(M_EFF * (ENERGIES + E0) / HBAR2_2ME), rtol=0.05)
    assert np.all(q_err > 0)
    # the fitted band, drawn over E(q), lies on the true one within 3 meV (of 90)
    true_q = 2 * np.sqrt(M_EFF * (ENERGIES + E0) / HBAR2_2ME)
    np.testing.assert_allclose(fit.energy(true_q), ENERGIES, atol=3.0)


def test_ring_peaks_read_high_on_a_small_window(kernel):
    """The documented bias of the |FFT| maximum: above 2k_F by a few %, not below."""
    k, pixel_size = kernel
    fit, q, _ = fit_kernel_dispersion(k, ENERGIES, pixel_size, method="peak")
    ratio = q / (2 * np.sqrt(M_EFF * (ENERGIES + E0) / HBAR2_2ME))
    assert np.all((ratio > 1.0) & (ratio < 1.12))
    assert fit.params["m_eff"] == pytest.approx(M_EFF, rel=0.15)


def test_linecut_of_the_kernel_spectrum_sees_the_same_ring(kernel):
    k, pixel_size = kernel
    spectrum = magnitude_spectrum(k, window=False, pad=4)
    dq = q_steps(spectrum.shape, pixel_size)
    for angle in (0.0, 45.0):
        q, cut = linecut(spectrum, angle=angle, q_step=dq)
        assert cut.shape == (len(ENERGIES), q.size)
        peaks = ring_wavevectors(q, cut, q_min=0.08)
        two_kf = 2 * np.sqrt(M_EFF * (ENERGIES + E0) / HBAR2_2ME)
        # a thin cut's maximum: high by up to 15 % near the band bottom, never low
        assert np.all((peaks > 0.99 * two_kf) & (peaks < 1.15 * two_kf))


def test_noisy_kernel_still_gives_m_eff_within_five_percent(kernel):
    k, pixel_size = kernel
    rng = np.random.default_rng(3)
    noisy = k + 0.05 * k.std(axis=(1, 2), keepdims=True) * rng.normal(size=k.shape)
    fit, _, _ = fit_kernel_dispersion(noisy, ENERGIES, pixel_size)
    assert fit.params["m_eff"] == pytest.approx(M_EFF, rel=0.05)
    assert fit.params["band_bottom"] == pytest.approx(E0, rel=0.05)


def test_exact_points_give_exact_parameters_and_the_right_errors():
    e = np.linspace(-50.0, 80.0, 9)
    q = 2 * np.sqrt(0.26 * (e + 440.0) / HBAR2_2ME)  # Cu(111)
    fit = fit_dispersion(e, q)
    assert fit.params["m_eff"] == pytest.approx(0.26, rel=1e-6)
    assert fit.params["band_bottom"] == pytest.approx(440.0, rel=1e-6)
    # errors grow with scatter
    noisy = q * (1 + 0.01 * np.random.default_rng(0).normal(size=q.size))
    assert fit_dispersion(e, noisy).errors["m_eff"] > 100 * fit.errors["m_eff"]


def test_linear_band_gives_fermi_velocity_in_meV_angstrom_and_m_per_s():
    e = np.linspace(-100.0, 100.0, 7)
    hbar_v = 3000.0  # meV·Å, about a topological surface state's
    fit = fit_dispersion(e, 2 * (0.05 + e / hbar_v), model="linear")
    assert fit.params["k_F"] == pytest.approx(0.05)
    assert fit.params["hbar_v_F"] == pytest.approx(hbar_v)
    assert fit.params["v_F"] == pytest.approx(4.558e5, rel=1e-3)  # 3 eV·Å / ħ


def test_nan_points_are_left_out_and_too_few_refused():
    e = np.linspace(0, 50, 5)
    q = 2 * np.sqrt(0.4 * (e + 65) / HBAR2_2ME)
    q[1] = np.nan
    assert fit_dispersion(e, q).params["m_eff"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="≥ 3 energies"):
        fit_dispersion(e[:2], q[:2])
    with pytest.raises(ValueError, match="model"):
        fit_dispersion(e, q, model="cubic")
