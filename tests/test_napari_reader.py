"""The reader opens saved QPI stacks with physical axes; broken files add nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pint
import pytest

from napari_qpi.io import QPIStack
from napari_qpi.napari.layers import UNITS
from napari_qpi.napari.reader import get_reader


def test_reader_claims_known_suffixes_only(tmp_path):
    assert get_reader(str(tmp_path / "a.npz")) is not None
    assert get_reader([str(tmp_path / "a.tif")]) is not None
    assert get_reader(str(tmp_path / "a.png")) is None
    assert get_reader([str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) is None


def test_reader_follows_readers_registry(tmp_path, monkeypatch):
    from napari_qpi import io

    assert get_reader(str(tmp_path / "a.xyz")) is None
    monkeypatch.setitem(io.READERS, ".xyz", lambda path: None)
    assert get_reader(str(tmp_path / "a.xyz")) is not None


def test_open_saved_stack(make_napari_viewer, tmp_path):
    energies = np.array([-10.0, 0.0, 5.0, 20.0])  # non-uniform bias steps
    data = np.random.default_rng(0).normal(size=(4, 32, 40)).astype(np.float32)
    path = QPIStack(data, energies, 2.5, {"bias_unit": "mV"}).save(tmp_path / "map.npz")
    viewer = make_napari_viewer()
    layers = viewer.open(path, plugin="napari-qpi")
    assert len(layers) == 1
    layer = layers[0]
    assert layer.name == "map"
    np.testing.assert_array_equal(layer.data, data)
    np.testing.assert_allclose(layer.scale, (10.0, 2.5, 2.5))
    np.testing.assert_allclose(layer.translate, (-10.0, 0.0, 0.0))
    ureg = pint.get_application_registry()
    assert tuple(layer.units) == tuple(ureg.Unit(u) for u in UNITS)
    assert tuple(layer.axis_labels) == ("E", "y", "x")
    assert layer.metadata["energies"] == energies.tolist()
    assert layer.metadata["pixel_size"] == 2.5
    assert layer.metadata["bias_unit"] == "mV"


@pytest.mark.parametrize("content", [b"not a zip at all", b""])
def test_broken_file_notifies_and_adds_nothing(make_napari_viewer, tmp_path, notes, content):
    path = tmp_path / "broken.npz"
    path.write_bytes(content)
    viewer = make_napari_viewer()
    assert viewer.open(path, plugin="napari-qpi") == []
    assert len(viewer.layers) == 0
    assert any("broken.npz" in str(n.message) for n in notes)
    # the viewer is still usable
    viewer.add_image(np.zeros((4, 4)))
    assert len(viewer.layers) == 1


def test_sample_data_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-qpi", "synthetic-stack")
    obs, pts = viewer.layers["QPI observation"], viewer.layers["scatterers"]
    truth = obs.metadata["ground_truth"]
    np.testing.assert_array_equal(pts.data, truth["positions"])  # pixels, scaled to Å
    np.testing.assert_allclose(pts.scale, obs.scale[1:])
    assert viewer.layers["true kernel"].data.shape == truth["kernel"].shape


def test_napari_package_import_is_light():
    import subprocess
    import sys

    code = ("import sys, napari_qpi.napari, napari_qpi.napari.reader; "
            "print(sorted(m for m in ('napari', 'torch', 'PyQt6', 'magicgui') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_several_sxm_images_open_as_one_energy_stack(make_napari_viewer, tmp_path):
    from test_nanonis import _images, write_sxm

    rng = np.random.default_rng(4)
    paths = []
    for i, bias in enumerate((0.03, -0.01)):
        paths.append(str(tmp_path / f"m{i}.sxm"))
        write_sxm(paths[-1], _images(rng), bias=bias)
    assert get_reader(paths) is not None
    assert get_reader([paths[0], str(tmp_path / "x.npz")]) is None  # only .sxm combine
    viewer = make_napari_viewer()
    viewer.open(paths, plugin="napari-qpi", stack=True)  # the list reaches the reader
    layer = viewer.layers[-1]
    assert layer.data.shape == (2, 6, 8)
    assert layer.metadata["energies"] == pytest.approx([-10.0, 30.0])
    assert layer.scale[0] == pytest.approx(40.0)


GRID = Path(__file__).resolve().parents[2] / "shared" / "data" / "nanonis" / (
    "NanonisReader_STS_grid_lockin.3ds")


@pytest.mark.skipif(not GRID.exists(), reason="the shared Nanonis grid is not here")
def test_nanonis_grid_opens_with_per_slice_contrast_and_a_channel_picker(
        make_napari_viewer, qtbot):
    # issue 12 defect 7: global min/max over all biases (and 49 overloaded pixels at
    # 10 V) left the grid nearly black; the channel was always the first lock-in
    viewer = make_napari_viewer()
    widget = viewer.window.add_plugin_dock_widget("napari-qpi", "Kernel extraction")[1]
    (layer,) = viewer.open(GRID, plugin="napari-qpi")
    assert layer.data.max() >= 9.9  # the overloaded pixels are there
    for index in (0, 100, 150):
        viewer.dims.set_current_step(0, index)
        lo, hi = np.percentile(layer.data[index], (0.5, 99.5))
        np.testing.assert_allclose(layer.contrast_limits, (lo, hi), rtol=1e-5)
        assert hi < 9.0
    from napari_qpi.napari.energy import text_overlay

    assert text_overlay(viewer).text.startswith("E = ")
    assert widget.image.value is layer
    assert not widget.channel.native.isHidden()  # shown (the window itself is not)
    assert "Current (A)" in widget.channel.choices
    assert widget.channel.value == layer.metadata["channel"] == "LockinX (V)"
    widget.channel.value = "Current (A)"
    assert layer.metadata["channel"] == "Current (A)"
    assert np.abs(layer.data).max() < 1e-6  # amperes now, not lock-in volts
    assert layer.contrast_limits[1] < 1e-6
