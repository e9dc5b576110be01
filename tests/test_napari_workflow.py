"""Issue 31 in a real viewer: batch results, progress with the fraction done, a dock that
does not widen, a result that scrolls, single-energy maps, stale outputs, q scales of
console layers, a channel switch's contrast, and q-space in a canvas of its own."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi.napari.layers import apply_layers, synthetic_layers
from napari_qpi.progress import Progress

SOURCE = "QPI observation"
EXTRACT = "Kernel extraction"


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def sim():
    from napari_qpi import simulate

    return simulate(seed=0, shape=(64, 64), kernel_size=21, n_scatterers=6,
                    energies=np.linspace(-20, 40, 3))


def _dock(viewer, name=EXTRACT):
    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", name)
    return widget


def test_batch_shows_every_result_with_a_bar_and_keeps_the_dock_width(viewer, qtbot, sim):
    apply_layers(viewer, synthetic_layers(sim))
    src = viewer.layers[SOURCE]
    crop_name = "a crop of the observation with a long name " * 3
    viewer.add_image(src.data[:, :48, :48], name=crop_name, scale=src.scale,
                     metadata={"qpi_role": "observation"})
    widget = _dock(viewer)
    widget.method.value = "power"
    widget.auto_size.value, widget.kernel_size.value = False, 21
    widget.batch.value = [src, viewer.layers[crop_name]]
    bars = []
    worker = widget.run_batch()
    labels = []
    worker.yielded.connect(lambda e: bars.append((e, widget.bar.value)))
    worker.yielded.connect(lambda e: labels.append(widget.bar.native.text()))
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    # every layer's result is shown, each under its name, not only the last
    text = widget.result.value
    assert text.count("power: ") == 2 and SOURCE in text and crop_name.strip() in text
    # the bar shows the fraction of the batch done: the second layer starts past half
    second = [bar for event, bar in bars if isinstance(event, Progress)
              and event.info.get("request") == 1]
    assert second and min(second) >= widget.bar.max // 2
    assert labels and all(t.endswith(" % of 2 layers") for t in labels[:-1]), labels
    assert widget.bar.value == widget.bar.max and widget.status.value.startswith("done in ")
    assert widget.bar.native.text() == "done"
    # the batch's long progress messages and results wrap instead of widening the dock
    # (Qt lays a dock out, and widens it, only when it is shown)
    texts = widget.result.value
    viewer.window.show()
    qtbot.waitUntil(lambda: widget.native.isVisible(), timeout=5000)
    widget.feedback.start(2, "power on 2 layers…")
    qtbot.wait(10)
    width = max(widget.native.minimumSizeHint().width(), widget.native.sizeHint().width())
    for event, _ in bars:
        if isinstance(event, Progress):
            widget.feedback.progress(event)
    widget.feedback.progress(Progress("x" * 500 + " step", 1, 4))
    widget.feedback.show(crop_name, texts)
    qtbot.wait(10)
    assert widget.native.minimumSizeHint().width() <= width
    assert widget.native.sizeHint().width() <= width
    assert "25 % of this step" in widget.status.value


def test_long_results_scroll_instead_of_being_clipped(viewer, qtbot):
    from qtpy.QtWidgets import QAbstractScrollArea

    widget = _dock(viewer)
    assert isinstance(widget.result.native, QAbstractScrollArea)
    assert widget.result.native.isReadOnly()
    widget.feedback.start(1, "power on map…")
    lines = [f"line {i}: " + "residual 0.12, cross-validated 0.34 " * 4 for i in range(40)]
    widget.feedback.show("map", "\n".join(lines))
    assert widget.result.value == "\n".join(lines)  # the whole text, reachable by scroll
    viewer.window.show()
    qtbot.waitUntil(lambda: widget.result.native.isVisible(), timeout=5000)
    box = widget.result.native
    qtbot.waitUntil(lambda: box.verticalScrollBar().maximum() > 0, timeout=5000)
    # no horizontal scroll: every line wraps at the box's width
    assert box.horizontalScrollBar().maximum() == 0


def test_step_time_left_is_extrapolated(viewer, monkeypatch):
    from napari_qpi.napari import feedback

    widget = _dock(viewer)
    clock = iter([0.0, 0.0, 10.0])
    monkeypatch.setattr(feedback.time, "perf_counter", lambda: next(clock))
    widget.feedback.start(1, "go")
    widget.feedback.progress(Progress("latent fit", 0, 4))
    assert widget.bar.value == 0
    assert widget.bar.native.text() == "0 % of this step"
    widget.feedback.progress(Progress("latent fit", 1, 4))
    # a quarter done in 10 s: about 30 s left in this step
    assert "about 30 s left" in widget.status.value
    assert "10 s since the run started" in widget.status.value
    assert widget.bar.value == widget.bar.max // 4


def test_generate_removes_the_outputs_of_the_map_it_overwrites(viewer, qtbot):
    from napari_qpi.napari.compute import extract_layer

    synth = _dock(viewer, "Synthetic QPI data")
    synth.size.value, synth.kernel_size.value = 64, 21
    synth.n_energies.value, synth.n_scatterers.value = 2, 6
    synth.generate()
    qtbot.waitUntil(lambda: synth.worker is None, timeout=60000)
    other = viewer.add_image(viewer.layers[SOURCE].data, name="other")
    extract_layer(viewer, SOURCE, method="power", kernel_size=21)
    extract_layer(viewer, other, method="power", kernel_size=21)
    assert f"{SOURCE} kernel" in viewer.layers
    synth.seed.value = 3
    synth.generate()
    qtbot.waitUntil(lambda: synth.worker is None, timeout=60000)
    from napari_qpi.napari.qspace import q_viewer

    names = {layer.name for layer in (*viewer.layers, *q_viewer(viewer).layers)}
    assert not [n for n in names if n.startswith(f"{SOURCE} ")], names
    assert {"other kernel", "other kernel |FFT|"} <= names  # another source's stay


def test_a_console_layer_with_scale_but_no_units_gets_q_in_its_scale(viewer, sim):
    from napari_qpi.napari.compute import extract_layer
    from napari_qpi.napari.qspace import q_viewer

    apply_layers(viewer, synthetic_layers(sim))  # in meV and Å
    extract_layer(viewer, SOURCE, method="power", kernel_size=21)
    layer = viewer.add_image(sim.observation, name="console", scale=(1.0, 2.0, 2.0))
    extract_layer(viewer, layer, method="power", kernel_size=21)
    kernel = viewer.layers["console kernel"]
    model = q_viewer(viewer, create=False)
    fft = model.layers["console kernel |FFT|"]
    # its 1/pixel |FFT| replaces the 1/Å one in the q canvas: no unit clash, no toasts
    assert f"{SOURCE} kernel |FFT|" not in model.layers
    assert model.layers.extent.units is not None
    assert f"{SOURCE} kernel" in viewer.layers  # the real-space kernel stays
    assert kernel.scale[-1] == pytest.approx(2.0)
    # a kernel drawn at 2 units a pixel has its |FFT| at 2π / (21 px · 2 units)
    np.testing.assert_allclose(fft.scale[-2:], 2 * np.pi / (21 * 2.0))
    assert str(fft.units[-1]) == "1 / pixel"


def test_a_one_energy_map_has_no_energy_axis_beside_a_stack(viewer, sim, tmp_path):
    from napari_qpi.io import QPIStack
    from napari_qpi.napari.compute import extract_layer
    from napari_qpi.napari.saving import save_run

    apply_layers(viewer, synthetic_layers(sim))  # 3 energies, 30 meV apart
    steps = viewer.dims.nsteps[0]
    path = QPIStack(sim.observation[:1], sim.energies[:1], sim.pixel_size, {}).save(
        tmp_path / "one.npz")
    (layer,) = viewer.open(path, plugin="napari-qpi")
    # no invented 1 meV step: the slider keeps the stack's steps
    assert layer.ndim == 2 and viewer.dims.nsteps[0] == steps
    assert layer.metadata["energies"] == [sim.energies[0]]
    np.testing.assert_allclose(layer.scale, (sim.pixel_size, sim.pixel_size))
    res = extract_layer(viewer, layer, method="power", kernel_size=21)
    from napari_qpi.napari.qspace import q_viewer

    for suffix in ("kernel", "residual"):
        assert viewer.layers[f"one {suffix}"].ndim == 2  # shown at every energy
    assert q_viewer(viewer).layers["one kernel |FFT|"].ndim == 2
    assert viewer.dims.nsteps[0] == steps
    # a saved one-energy run opens as maps, too
    run = save_run(tmp_path / "run.npz", res, energies=sim.energies[:1])
    opened = viewer.open(run, plugin="napari-qpi")
    assert all(out.ndim == 2 for out in opened) and viewer.dims.nsteps[0] == steps
    # and a simulated one-energy map
    from napari_qpi import simulate

    one = simulate(seed=1, shape=(48, 48), kernel_size=21, n_scatterers=4,
                   energies=[10.0])
    obs, kernel, _ = synthetic_layers(one)
    assert np.ndim(obs[0]) == 2 and len(obs[1]["scale"]) == 2
    assert np.ndim(kernel[0]) == 2 and len(kernel[1]["translate"]) == 2


def test_a_channel_switch_takes_the_new_channels_contrast_at_once(viewer, monkeypatch):
    from napari_qpi.napari import reader
    from napari_qpi.napari.layers import robust_limits, slice_limits

    rng = np.random.default_rng(0)
    gains = np.array([1.0, 2.0, 4.0, 8.0])[:, None, None]
    channels = {"LockinX (V)": rng.normal(size=(4, 32, 32)) * gains,
                "Current (A)": 1e-9 * rng.normal(size=(4, 32, 32)) / gains}

    def read(path, channel=None):
        data = channels[channel]
        return [(data, {"metadata": {"source": path, "channel": channel, "channels":
                                     list(channels), "slice_limits": slice_limits(data)},
                        "contrast_limits": robust_limits(data)}, "image")]

    monkeypatch.setattr(reader, "read_stack", read)
    ((data, kwargs, _),) = read("grid.3ds", "LockinX (V)")
    layer = viewer.add_image(data, name="grid", **kwargs)
    widget = _dock(viewer)
    viewer.dims.set_current_step(0, 2)
    assert widget.image.value is layer and not widget.channel.native.isHidden()
    widget.channel.value = "Current (A)"
    assert layer.metadata["channel"] == "Current (A)"
    # the shown slice's own contrast, without moving the slider
    np.testing.assert_allclose(layer.contrast_limits,
                               robust_limits(channels["Current (A)"][2]), rtol=1e-6)


def test_kernel_fft_is_shown_in_its_own_canvas_fitted_to_it(viewer, qtbot, sim, notes):
    # issue 31: 3 Å⁻¹ beside 128 Å, the |FFT| was a dot until zoomed 100× by hand, and
    # its Å⁻¹ beside Å toasted "Inconsistent units across layers" at every layer added
    from napari_qpi.napari.compute import extract_layer
    from napari_qpi.napari.qspace import q_viewer

    apply_layers(viewer, synthetic_layers(sim))
    extract_layer(viewer, SOURCE, method="power", kernel_size=21)
    viewer.reset_view()
    assert f"{SOURCE} kernel |FFT|" not in viewer.layers
    model = q_viewer(viewer, create=False)
    fft = model.layers[f"{SOURCE} kernel |FFT|"]
    assert fft.visible
    # on screen, the ring (2k_F) is large in its canvas without touching the zoom
    from napari_qpi.napari.readouts import radial_profile, ring_radius

    profiles = np.asarray([radial_profile(s)[1] for s in fft.data])
    ring = ring_radius(np.arange(profiles.shape[1]), profiles, q_min=0.5).mean()
    ring *= fft.scale[-1]  # Å⁻¹

    def fraction():  # the ring's diameter on screen over the canvas' smaller side
        return 2 * ring * model.scene.camera.zoom / min(model.canvas.size)

    # the ring's peak is about one q step from q = 0 on this 21-px window: a fifth of
    # the canvas across (the whole |FFT| fitted to the canvas would make it a tenth)
    assert 0.2 < fraction() < 1.0, fraction()
    whole = 2 * ring / (fft.data.shape[-1] * fft.scale[-1])
    assert fraction() > 2 * whole, (fraction(), whole)
    assert viewer.layers.extent.units is not None  # what napari's toast fires on
    # shown, the dock's canvas takes its real size, and the ring is still large in it
    viewer.window.show()
    qtbot.waitUntil(lambda: model.canvas.size != (800, 600), timeout=5000)
    qtbot.wait(50)
    assert 0.2 < fraction() < 1.0, (fraction(), model.canvas.size)
    # centred on q = 0
    np.testing.assert_allclose(model.scene.camera.center[-2:], (0.0, 0.0), atol=1e-9)
    # the energy follows the main viewer's slider
    viewer.dims.set_current_step(0, 2)
    assert model.dims.point[0] == pytest.approx(viewer.dims.point[0])
    assert model.dims.point[0] == pytest.approx(sim.energies[2])
    from napari_qpi.napari.energy import text_overlay

    assert text_overlay(model).text == f"E = {sim.energies[2]:.4g} meV"
    # with the contrast of that energy's slice: the kernel's amplitude varies with E
    hi = np.percentile(fft.data[2], 99.5)
    np.testing.assert_allclose(fft.contrast_limits, (0.0, hi), rtol=1e-5)
    # closed by its ✕, the canvas comes back with the next run
    from napari_qpi.napari.qspace import _DOCKS

    viewer.window.remove_dock_widget(_DOCKS[viewer])
    assert q_viewer(viewer, create=False) is None
    extract_layer(viewer, SOURCE, method="power", kernel_size=21)
    again = q_viewer(viewer, create=False)
    assert again is not model and f"{SOURCE} kernel |FFT|" in again.layers
    assert again.dims.point[0] == pytest.approx(sim.energies[2])
    assert not [n for n in notes if "Inconsistent units" in str(n.message)]
