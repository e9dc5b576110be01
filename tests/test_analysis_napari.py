"""The analysis dock in a real viewer, and the analysis room's import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_qpi.analysis.steps import replay


def test_analysis_imports_no_gui_and_no_torch():
    code = ("import json, sys\nimport napari_qpi.analysis\n"
            "heavy = ('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'torch',"
            " 'magicgui')\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_replay_refuses_unknown_steps():
    with pytest.raises(ValueError, match="unknown"):
        replay(np.ones((8, 8)), [{"step": "rotate"}])


@pytest.fixture
def sim():
    from napari_qpi import simulate

    return simulate(family="free_electron", energies=np.linspace(-30, 60, 8),
                    shape=(65, 65), kernel_size=65, n_scatterers=6, snr=np.inf, seed=0)


def _dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", "QPI analysis")
    return widget


def test_lattice_then_symmetrised_qspace_and_gamma_x_cut(make_napari_viewer):
    viewer = make_napari_viewer()
    yy, xx = np.mgrid[:96, :96].astype(float)
    lattice_map = np.cos(2 * np.pi * xx / 6) + np.cos(2 * np.pi * yy / 6)
    stack = np.stack([lattice_map * (1 + 0.1 * e) for e in range(3)])
    viewer.add_image(stack, name="map", scale=(10.0, 0.5, 0.5), translate=(-10.0, 0, 0),
                     units=("meV", "angstrom", "angstrom"), axis_labels=("E", "y", "x"),
                     metadata={"qpi_role": "observation"})
    widget = _dock(viewer)
    widget.layer.value = viewer.layers["map"]
    widget.action.value = "Lattice vectors"
    data = widget.compute()
    lat = data["lattice"]
    assert lat.kind == "square"
    np.testing.assert_allclose(lat.constants, 3.0, rtol=1e-3)  # 6 px × 0.5 Å
    arrows = viewer.layers["map lattice"]
    np.testing.assert_allclose(np.linalg.norm(arrows.data[:, 1], axis=1), 3.0, rtol=1e-3)
    assert set(widget.direction.choices) == {"Γ–X", "Γ–M", "radial", "angle"}
    assert widget.direction.value == "Γ–X"  # the lattice's first direction is offered

    widget.action.value = "Align to lattice"
    (aligned,) = widget.compute()["layers"]
    assert aligned.data.shape == stack.shape and tuple(aligned.scale) == (10.0, 0.5, 0.5)
    steps = aligned.metadata["qpi_analysis"]["steps"]
    np.testing.assert_allclose(replay(stack, steps), aligned.data, rtol=1e-5, atol=1e-5)

    widget.layer.value = viewer.layers["map"]
    widget.action.value = "q-space (symmetrised)"
    widget.order.value, widget.mirror.value = 4, True
    data = widget.compute()
    (qlayer,) = data["qspace"]
    assert str(qlayer.units[-1]) == "1 / angstrom"
    assert qlayer.scale[-1] == pytest.approx(2 * np.pi / (96 * 0.5))
    record = qlayer.metadata["qpi_analysis"]
    assert record["source"] == "map" and [s["step"] for s in record["steps"]] == \
        ["qspace", "symmetrize"]
    np.testing.assert_allclose(replay(stack, record["steps"]), qlayer.data, rtol=1e-5)

    widget.action.value = "E(q) cut"
    widget.direction.value = "Γ–X"
    data = widget.compute()
    eq = data["eq"]
    assert eq["cut"].shape[0] == 3
    assert eq["q"][-1] == pytest.approx(np.pi / 3.0)  # X = b/2 = π/a
    # the Bragg peak lies beyond X: Γ–M passes none, Γ–X ends short of (2π/a, 0)
    np.testing.assert_allclose(eq["energies"], [-10.0, 0.0, 10.0])


def test_dispersion_fit_on_the_true_kernel(make_napari_viewer, sim):
    from napari_qpi.napari.layers import apply_layers, synthetic_layers

    viewer = make_napari_viewer()
    apply_layers(viewer, synthetic_layers(sim))
    widget = _dock(viewer)
    widget.layer.value = viewer.layers["true kernel"]
    widget.action.value = "Dispersion fit"
    data = widget.compute()
    fit = data["fit"]
    assert fit.params["m_eff"] == pytest.approx(0.4, rel=0.05), data["text"]
    assert fit.params["band_bottom"] == pytest.approx(65.0, rel=0.05)
    assert "m* = " in widget.result.value
    # the observation's own E(q), averaged over directions, and the band read from its ring
    widget.layer.value = viewer.layers["QPI observation"]
    widget.direction.value = "radial"
    widget.action.value = "Dispersion fit"
    data = widget.compute()
    assert data["eq"]["cut"].shape[0] == 8
    assert data["fit"].params["m_eff"] == pytest.approx(0.4, rel=0.25), data["text"]


def test_feenstra_and_lockin_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    v = np.linspace(-50.0, 50.0, 21)
    scale = np.linspace(0.5, 2.0, 16).reshape(4, 4)
    current = 1e-12 * (v + 1e-4 * v**3)[:, None, None] * scale  # A
    didv = 0.2 * (1 + 3e-4 * v**2)[:, None, None] * scale  # lock-in volts
    geom = {"scale": (5.0, 1.0, 1.0), "translate": (-50.0, 0, 0)}
    viewer.add_image(didv, name="dIdV", **geom)
    viewer.add_image(current, name="I", **geom)
    widget = _dock(viewer)
    widget.layer.value = viewer.layers["dIdV"]
    widget.second.value = viewer.layers["I"]
    widget.action.value = "Feenstra (dI/dV)/(I/V)"
    done = widget.compute()
    (out,) = done["layers"]
    exact = (1 + 3e-4 * v**2) / (1 + 1e-4 * v**2)  # dimensionless, whatever the units
    np.testing.assert_allclose(out.data[:, 2, 3], exact, rtol=0.01)
    assert "lock-in gain" in done["text"]
    assert tuple(out.scale) == (5.0, 1.0, 1.0)
    widget.action.value = "Lock-in R/θ"
    r, theta = widget.compute()["layers"]
    np.testing.assert_allclose(r.data, np.hypot(didv, current), rtol=1e-5, atol=1e-12)
    widget.second.value = None
    assert "choose the other channel" in widget.compute()["text"]


def test_crop_to_a_rectangle_drawn_in_angstrom(make_napari_viewer):
    viewer = make_napari_viewer()
    stack = np.arange(2 * 40 * 50, dtype=float).reshape(2, 40, 50)
    viewer.add_image(stack, name="map", scale=(5.0, 2.0, 2.0), translate=(0.0, 10.0, 0.0))
    # rows 5–24, columns 10–29 of the map, drawn in world units (Å)
    viewer.add_shapes([[[20.0, 20.0], [20.0, 58.0], [58.0, 58.0], [58.0, 20.0]]],
                      shape_type="rectangle", name="box")
    widget = _dock(viewer)
    widget.layer.value = viewer.layers["map"]
    widget.action.value = "Crop to rectangle"
    (out,) = widget.compute()["layers"]
    np.testing.assert_array_equal(out.data, stack[:, 5:25, 10:30])
    np.testing.assert_allclose(out.translate, (0.0, 20.0, 20.0))  # stays where it was
    steps = out.metadata["qpi_analysis"]["steps"]
    np.testing.assert_array_equal(replay(stack, steps), out.data)


def test_the_analysis_dock_beside_the_others_fits_a_laptop_screen(make_napari_viewer,
                                                                   qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1280, 700)  # a laptop's usable height (as tests/test_napari_docks.py)
    for name in ("Kernel extraction", "QPI read-outs", "QPI analysis"):
        viewer.window.add_plugin_dock_widget("napari-qpi", name)
    qtbot.wait(50)
    assert window.minimumSizeHint().height() <= 700
