"""The read-out dock: E(q) follows the band, profiles in Å, panels follow the slider."""

from __future__ import annotations

from pathlib import Path

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
    # a layer added beside them redraws nothing (a run adds five); removing a shown
    # layer redraws with the next choice
    drawn = []
    widget.refresh = lambda *a: drawn.append(1) or widget.data
    viewer.add_image(sim.observation[0], name="unrelated")
    assert drawn == []
    viewer.layers.remove("true kernel")
    assert drawn and widget.kernel.value is None


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


GRID = Path(__file__).resolve().parents[2] / "shared" / "data" / "nanonis" / (
    "NanonisReader_STS_grid_lockin.3ds")


@pytest.mark.skipif(not GRID.exists(), reason="the shared Nanonis grid is not here")
def test_eq_of_the_nanonis_grid_is_readable(make_napari_viewer):
    # issue 31 on the real grid: its signal sits at the first q steps (0–0.5 Å⁻¹ of
    # ±1.9 Å⁻¹), so rows normalised beyond 2 q steps saturated there, the axis stayed
    # at its end (a few rows of pure noise), and the "ring" was the first q past 2 steps
    viewer = make_napari_viewer()
    (layer,) = viewer.open(GRID, plugin="napari-qpi")
    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", "QPI read-outs")
    assert widget.observation.value is layer and widget.normalise.value
    q, energies, _ = widget.data["observation_eq"]
    dq = q[1] - q[0]
    shown = widget.data["observation_eq_shown"]
    # every energy peaks at 1 beyond q = 0: none saturated, none black
    np.testing.assert_allclose(shown[:, q > dq / 2].max(axis=1), 1.0)
    # the axis is zoomed on the signal, which is inside it
    q_range = widget.data["observation_q_range"]
    assert q_range < 0.5 * q.max(), (q_range, q.max())
    mean = shown[:, 1:].mean(axis=0)
    assert q[1:][mean > 0.5].max() < q_range
    assert widget.axes[2].get_xlim() == pytest.approx((0.0, q_range))
    # a ring marker on each row's peak beyond q = 0, inside the range; none on rows
    # that only fall from q = 0 or are noise (they drew a column at 0.38 Å⁻¹)
    _, ring = widget.data["observation_ring"]
    found = np.isfinite(ring)
    assert 0.5 < found.mean() < 0.9, found.mean()
    strongest = q[1:][np.argmax(shown[:, 1:], axis=1)]
    assert np.all(np.abs(ring[found] - strongest[found]) <= dq / 2)
    assert np.all(ring[found] < q_range)
    falling = shown[:, 1] >= shown[:, 2:].max(axis=1)
    assert not np.any(found & falling & (shown[:, 0] > shown[:, 1]))
