"""The read-out dock: E(q) follows the band, profiles in Å, panels follow the slider."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi.napari import readouts
from napari_qpi.physics.bands import HBAR2_2ME, default_band


@pytest.fixture
def free_electron():
    from napari_qpi import simulate

    return simulate(family="free_electron", seed=0, shape=(128, 128), n_scatterers=20)


def _two_kf(sim) -> np.ndarray:
    """The backscattering wavevector 2k_F(E) of the simulated band, Å⁻¹."""
    band = default_band("free_electron")
    p = band.params
    return 2 * np.sqrt((sim.energies + p["band_bottom"]) * p["m_eff"] / HBAR2_2ME)


def test_radial_profile_and_linecut_of_a_known_ring():
    y, x = np.indices((41, 41)) - 20
    image = np.cos(0.3 * np.hypot(y, x))
    r, prof = readouts.radial_profile(image, pixel_size=2.0)
    assert r[1] == 2.0 and prof[0] == 1.0
    np.testing.assert_allclose(prof[:15], np.cos(0.3 * np.arange(15)), atol=0.05)
    t, cut = readouts.linecut(image, 90.0, pixel_size=2.0)
    np.testing.assert_allclose(cut, np.cos(0.3 * np.abs(t / 2.0)), atol=1e-9)


def test_dispersion_plot_follows_the_free_electron_band(make_napari_viewer, free_electron):
    from napari_qpi.napari.layers import apply_layers, synthetic_layers

    sim = free_electron
    viewer = make_napari_viewer()
    apply_layers(viewer, synthetic_layers(sim))
    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", "QPI read-outs")
    assert widget.kernel.value is viewer.layers["true kernel"]
    assert widget.observation.value is viewer.layers["QPI observation"]
    data = widget.refresh()
    expected = _two_kf(sim)
    # the kernel's E(q): the ring sits at 2k_F(E) within one q-pixel of the kernel
    q, energies, cut = data["kernel_eq"]
    np.testing.assert_allclose(energies, sim.energies)
    dq = 2 * np.pi / (sim.kernel.shape[-1] * sim.pixel_size)
    assert q[1] - q[0] == pytest.approx(dq)
    radius = readouts.ring_radius(q, cut, q_min=2 * dq)
    assert np.all(np.abs(radius - expected) < dq), (radius, expected, dq)
    assert np.all(np.diff(radius) >= 0) and radius[-1] > radius[0]  # disperses outwards
    # the observation's own E(q), finer in q, shows the same band
    q, _, cut = data["observation_eq"]
    dq_map = q[1] - q[0]
    radius = readouts.ring_radius(q, cut, q_min=2 * dq_map)
    assert np.all(np.abs(radius - expected) < 1.5 * dq_map), (radius, expected)
    # a cut along one direction of an isotropic kernel finds the same ring
    widget.average.value = False
    widget.angle.value = 30.0
    q, _, cut = widget.data["kernel_eq"]
    assert q.min() < 0 < q.max()  # signed q along the direction
    radius = readouts.ring_radius(q, cut, q_min=2 * dq)
    assert np.all(np.abs(radius - expected) < dq)


def test_panels_follow_the_energy_slider(make_napari_viewer, free_electron):
    from napari_qpi.napari.layers import apply_layers, synthetic_layers

    sim = free_electron
    viewer = make_napari_viewer()
    apply_layers(viewer, synthetic_layers(sim))
    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", "QPI read-outs")
    for index in (1, 5):
        viewer.dims.set_current_step(0, index)
        assert widget.data["energy"] == pytest.approx(sim.energies[index])
        r, prof = readouts.radial_profile(sim.kernel[index], sim.pixel_size)
        np.testing.assert_allclose(widget.data["profile"], prof)
        assert widget.axes[1].lines[0].get_ydata()[0] == pytest.approx(sim.energies[index])
    # a re-run that updates the kernel layer in place redraws the panels
    viewer.layers["true kernel"].data = -sim.kernel
    np.testing.assert_allclose(widget.data["profile"], -prof)
    assert widget.axes[0].get_xlabel() == "r (Å)"
    assert widget.axes[1].get_xlabel() == "q (Å⁻¹)"
    assert widget.axes[1].get_ylabel() == "E (meV)"


def test_symmetrised_q_space_of_the_observation(make_napari_viewer):
    from napari_qpi.napari.layers import apply_layers, synthetic_layers
    from napari_qpi.physics import simulate

    sim = simulate(family="square", seed=1, shape=(64, 64), kernel_size=33,
                   n_scatterers=10, energies=[-150.0, -120.0])
    viewer = make_napari_viewer()
    apply_layers(viewer, synthetic_layers(sim))
    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", "QPI read-outs")
    raw = widget.data["observation_q"]
    widget.symmetry.value = "C4"
    sym = widget.data["observation_q"]
    c = 32  # q = 0
    assert not np.allclose(raw[c, c + 5], raw[c - 5, c])
    # a C4-symmetrised image is unchanged by a quarter turn about q = 0
    np.testing.assert_allclose(sym[c - 10:c + 11, c - 10:c + 11],
                               np.rot90(sym[c - 10:c + 11, c - 10:c + 11]), rtol=0.05,
                               atol=0.05 * sym.max())
    assert widget.axes[3].get_xlabel() == "q_x (Å⁻¹)"


def test_eq_is_normalised_per_energy_zoomed_on_the_signal_with_the_ring_drawn(
        make_napari_viewer, free_electron):
    # issue 31: on a real grid the LDOS' bias dependence saturated some rows and
    # blackened others, the ring sat in a corner of the ±q axis, and ring_radius was
    # never drawn
    from napari_qpi.napari.layers import apply_layers, synthetic_layers

    sim = free_electron
    viewer = make_napari_viewer()
    apply_layers(viewer, synthetic_layers(sim))
    obs = viewer.layers["QPI observation"]
    obs.data = obs.data * np.logspace(-2, 1, len(sim.energies))[:, None, None]
    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", "QPI read-outs")
    assert widget.normalise.value  # on by default
    expected = _two_kf(sim)
    for what, ax, tol in (("kernel", widget.axes[1], 1.0), ("observation", widget.axes[2],
                                                            1.5)):
        q, energies, _ = widget.data[f"{what}_eq"]
        dq = q[1] - q[0]
        shown = widget.data[f"{what}_eq_shown"]
        np.testing.assert_allclose(shown[:, q > 2 * dq].max(axis=1), 1.0)
        mesh = ax.collections[0]
        np.testing.assert_allclose(np.asarray(mesh.get_array()).ravel(), shown.ravel())
        assert mesh.get_clim() == (0.0, 1.0)
        # the ring radius is drawn, on the band
        ring = [line for line in ax.lines if line.get_label() == "ring radius"]
        assert len(ring) == 1
        np.testing.assert_allclose(ring[0].get_ydata(), energies)
        assert np.all(np.abs(ring[0].get_xdata() - expected) < tol * dq)
        # the q axis is fitted to the signal: the ring inside, most of the axis out
        q_range = widget.data[f"{what}_q_range"]
        assert ax.get_xlim() == pytest.approx((0.0, q_range))
        assert expected.max() + dq < q_range < 0.75 * q.max(), (what, q_range, q.max())
    assert widget.data["observation_q_range"] < 0.4 * np.pi / sim.pixel_size
    assert widget.axes[3].get_xlim() == pytest.approx(
        (-widget.data["observation_q_range"], widget.data["observation_q_range"]))
    # off: one colour scale for all energies, on which the weak ones are black
    widget.normalise.value = False
    q, _, _ = widget.data["observation_eq"]
    peaks = widget.data["observation_eq_shown"][:, q > 2 * (q[1] - q[0])].max(axis=1)
    assert peaks.min() < 0.3 * peaks.max()
    # a cut along one direction shows the ring on both sides of q = 0
    widget.normalise.value = True
    widget.average.value = False
    lo, hi = widget.axes[1].get_xlim()
    assert lo == pytest.approx(-hi) and hi == pytest.approx(widget.data["kernel_q_range"])
    xs = np.concatenate([line.get_xdata() for line in widget.axes[1].lines
                         if line.get_marker() == "o"])
    assert (xs < 0).any() and (xs > 0).any()
