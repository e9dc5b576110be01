"""Linecuts and radial profiles in physical q units."""

import numpy as np
import pytest

from napari_qpi.analysis import linecut, magnitude_spectrum, q_steps, radial_profile


def test_a_plane_wave_peaks_at_its_wavevector_in_inverse_angstrom():
    pixel_size = 1.5
    yy, xx = np.mgrid[:64, :64].astype(float)
    k = 2 * np.pi * 8 / 64  # rad/px, on the FFT grid
    angle = 90.0  # +y on screen is −rows
    stack = np.stack([np.cos(k * yy), 2 * np.cos(k * yy)])
    spec = magnitude_spectrum(stack)
    dq = q_steps(spec.shape, pixel_size)
    np.testing.assert_allclose(dq, 2 * np.pi / (64 * pixel_size))
    q, cut = linecut(spec, angle=angle, q_step=dq)
    assert cut.shape == (2, q.size)
    assert q[np.argmax(cut[0])] == pytest.approx(k / pixel_size)
    np.testing.assert_allclose(cut[1], 2 * cut[0])
    # along x there is nothing at that q
    qx, across = linecut(spec, angle=0.0, q_step=dq)
    assert across[0][qx > 3 * dq[1]].max() < 1e-3 * cut[0].max()  # the Hann's leakage


def test_end_point_cut_and_width():
    image = np.zeros((33, 33))
    image[16, 16 + 10] = 1.0  # a spot 10 px along +x
    q, cut = linecut(image, end=(0.0, 12.0), q_step=1.0)
    assert q[-1] == pytest.approx(12.0) and q[np.argmax(cut)] == pytest.approx(10.0)
    _, wide = linecut(image, end=(0.0, 12.0), q_step=1.0, width=3)
    assert wide.max() == pytest.approx(1 / 3)


def test_radial_profile_of_a_ring():
    yy, xx = np.indices((65, 65)) - 32
    ring = np.exp(-((np.hypot(yy, xx) - 12.0) ** 2) / 2)
    q, profile = radial_profile(ring, q_step=0.05)
    assert q[np.argmax(profile)] == pytest.approx(0.6)
    assert q[-1] == pytest.approx(32 * 0.05)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="end.*angle"):
        linecut(np.ones((9, 9)))
    with pytest.raises(ValueError, match="q_step"):
        linecut(np.ones((9, 9)), angle=0.0, q_step=-1.0)
    with pytest.raises(ValueError, match="pad"):
        magnitude_spectrum(np.ones((9, 9)), pad=0)


@pytest.mark.parametrize("module", ["dispersion", "lattice", "spectroscopy", "steps",
                                    "symmetry"])
def test_the_examples_in_the_docstrings_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"napari_qpi.analysis.{module}")
    result = doctest.testmod(mod, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
