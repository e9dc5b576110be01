"""Instrument preprocessing: background, line offsets, lock-in, Bragg peaks, Lawler–Fujita
drift correction, and the recorded, replayable pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi.io.lattice import (
    correct_drift,
    displacement_field,
    find_bragg_peaks,
    lattice_vectors,
    lattice_waves,
)
from napari_qpi.io.pipeline import auto_steps, preprocess
from napari_qpi.io.preprocess import (
    deconvolve_lockin,
    line_offset_ratio,
    remove_bragg_peaks,
    subtract_background,
)
from napari_qpi.physics.simulation import simulate


def qpi_map(seed: int = 0, n: int = 96) -> np.ndarray:
    return simulate(family="square", shape=(n, n), kernel_size=33,
                    n_scatterers=15, snr=20, seed=seed).observation[0]


def lattice(n: int = 96, period: float = 3.3, angle: float = 0.3, u=None) -> np.ndarray:
    """A hexagonal corrugation, optionally seen at r + u(r) (drifted)."""
    yy, xx = np.mgrid[:n, :n].astype(float)
    if u is not None:
        yy, xx = yy + u[0], xx + u[1]
    k = 2 * np.pi / period
    out = np.zeros((n, n))
    for j in range(3):
        a = angle + j * 2 * np.pi / 3
        out += np.cos(k * (np.sin(a) * yy + np.cos(a) * xx))
    return out


def test_background_removes_a_bowl_and_keeps_the_qpi():
    y = qpi_map()
    yy, xx = np.mgrid[:96, :96] / 96.0
    bowl = 5 * y.std() * ((yy - 0.3) ** 2 + 0.5 * xx * yy + 0.2 * xx)
    out = subtract_background(y + bowl)
    assert np.corrcoef(out.ravel(), y.ravel())[0, 1] > 0.98
    assert np.abs(subtract_background(bowl)).max() < 1e-9 * np.abs(bowl).max()


def test_line_offsets_are_detected_only_where_they_are():
    y = qpi_map()
    rng = np.random.default_rng(1)
    striped = y + np.cumsum(rng.normal(0, 0.3 * y.std(), 96))[:, None]
    assert line_offset_ratio(y) < 2
    assert line_offset_ratio(striped) > 5
    assert [s["step"] for s in auto_steps(striped)] == ["background", "lines"]
    assert [s["step"] for s in auto_steps(y)] == ["background"]


def test_lockin_deconvolution_inverts_the_one_pole_filter():
    y = qpi_map().astype(np.float64)
    tau = 1.7
    a = np.exp(-1 / tau)
    filtered = np.zeros_like(y)
    filtered[:, 0] = y[:, 0]
    for n in range(1, y.shape[1]):
        filtered[:, n] = a * filtered[:, n - 1] + (1 - a) * y[:, n]
    out = deconvolve_lockin(filtered, time_constant=tau)
    np.testing.assert_allclose(out[:, 1:], y[:, 1:], atol=1e-9 * np.abs(y).max())
    with pytest.raises(ValueError, match="time_constant"):
        deconvolve_lockin(y, time_constant=-1)


def test_bragg_peaks_found_on_a_lattice_not_on_qpi():
    y = qpi_map()
    assert len(find_bragg_peaks(y)) == 0
    peaks = find_bragg_peaks(y + 0.5 * y.std() * lattice())
    assert len(peaks) == 3  # one of each ±q pair of a hexagonal lattice
    np.testing.assert_allclose(np.linalg.norm(peaks, axis=1), 2 * np.pi / 3.3, rtol=0.05)
    assert lattice_vectors(peaks) is not None
    out, applied = preprocess(y + 0.5 * y.std() * lattice())
    assert [s["step"] for s in applied] == ["background", "drift", "bragg"]
    assert np.corrcoef(out.ravel(), y.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("period, angle", [(3.3, 0.3), (2.7, 1.1), (3.7, 0.0)])
def test_lattice_waves_leave_no_leakage_where_a_notch_does(period, angle):
    # a lattice whose period does not divide the map is not periodic on the FFT's torus:
    # its peaks leak along both axes, and a notch of the peaks leaves a third of it
    y = qpi_map()
    lat = y.std() * lattice(period=period, angle=angle)
    local = remove_bragg_peaks(y + lat)
    notch = remove_bragg_peaks(y + lat, method="notch")
    assert np.std(local - y) < 0.08 * np.std(lat)
    assert np.std(notch - y) > 0.2 * np.std(lat)  # what the local subtraction fixes
    assert np.corrcoef(local.ravel(), y.ravel())[0, 1] > 0.99
    # on a map without a lattice there is nothing to subtract
    assert np.abs(lattice_waves(y, find_bragg_peaks(y))).max() == 0


def test_drift_correction_makes_a_drifted_lattice_periodic_again():
    n = 96
    yy, xx = np.mgrid[:n, :n].astype(float)
    # creep along the slow axis plus a slow wobble, up to ~1.3 px
    u = np.stack([0.012 * yy + 0.4 * np.sin(2 * np.pi * xx / 80),
                  0.6 * np.sin(2 * np.pi * yy / 70)])
    drifted = lattice(n, u=u)
    fixed = correct_drift(drifted)
    # a global stretch is indistinguishable from another lattice constant, so the test is
    # periodicity: the lattice's power gathers in its Bragg peaks again, and the
    # displacement field measured on the result is nearly flat
    def sharpness(a):
        power = np.abs(np.fft.fft2(a - a.mean())) ** 2
        return np.sort(power.ravel())[::-1][:6].sum() / power.sum()

    assert sharpness(fixed) > 1.5 * sharpness(drifted)
    peaks = find_bragg_peaks(drifted)
    inner = (slice(None), slice(12, -12), slice(12, -12))  # edges resample outside the map
    before = displacement_field(drifted, lattice_vectors(peaks, drifted),
                                smoothing=10)[inner].std(axis=(1, 2))
    after = displacement_field(fixed, lattice_vectors(peaks, fixed),
                               smoothing=10)[inner].std(axis=(1, 2))
    assert np.all(after < 0.5 * before.max())
    assert after.max() < 0.25  # px, from a drift of up to ~1.3 px


def test_drift_correction_without_a_lattice_is_a_clear_error():
    with pytest.raises(ValueError, match="Bragg peaks"):
        correct_drift(qpi_map())


def test_pipeline_records_steps_that_replay_the_run():
    y = qpi_map() + np.cumsum(np.random.default_rng(2).normal(0, 0.2, 96))[:, None]
    out, applied = preprocess(y, "auto")
    again, same = preprocess(y, applied)
    assert same == applied
    np.testing.assert_array_equal(again, out)
    none, nothing = preprocess(y, None)
    assert nothing == [] and np.array_equal(none, y) and none is not y
    with pytest.raises(ValueError, match="unknown"):
        preprocess(y, ["flatten everything"])
    with pytest.raises(ValueError, match="preprocess="):
        preprocess(y, 3)
    with pytest.raises(ValueError, match="lockin"):
        preprocess(y, ["lockin"])  # needs its time constant
