"""Issue 31 in a real viewer: the docks fit a laptop screen, their bodies scroll."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi.napari.docking import scroll_area
from napari_qpi.napari.layers import apply_layers, synthetic_layers

#: A laptop's usable height: 768 px less the desktop's bars.
LAPTOP_HEIGHT = 700


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer(show=True)


def test_every_dock_open_the_window_still_fits_a_laptop_screen(viewer, qtbot):
    # issue 31: with the extraction dock (684 px at least), the read-outs (906 px) and
    # the q-space canvas, napari made the window 2,023 px tall; on a laptop the lower
    # docks, and the result text in them, fell off the screen
    from napari_qpi import simulate
    from napari_qpi.napari.qspace import q_viewer

    sim = simulate(seed=0, shape=(48, 48), kernel_size=15, n_scatterers=4,
                   energies=np.linspace(-20, 40, 3))
    apply_layers(viewer, synthetic_layers(sim))
    window = viewer.window._qt_window
    window.resize(1280, LAPTOP_HEIGHT)
    docks = {name: viewer.window.add_plugin_dock_widget("napari-qpi", name)[1]
             for name in ("Kernel extraction", "QPI read-outs")}
    extraction = docks["Kernel extraction"]
    extraction.method.value = "power"  # magicgui still drives the moved widgets
    assert extraction.method.native.currentText() == "power"
    extraction.auto_size.value, extraction.kernel_size.value = False, 15
    q_viewer(viewer)  # the q-space dock a run opens
    qtbot.wait(50)
    assert window.minimumSizeHint().height() <= LAPTOP_HEIGHT
    assert window.height() <= LAPTOP_HEIGHT
    # a fourth dock still fits the whole screen of a laptop (768 px)
    docks["Synthetic QPI data"] = viewer.window.add_plugin_dock_widget(
        "napari-qpi", "Synthetic QPI data")[1]
    qtbot.wait(50)
    assert window.minimumSizeHint().height() <= 768
    for name, widget in docks.items():
        scroll = scroll_area(widget)
        # everything of the dock is in its scroll area, reachable by scrolling
        assert scroll is not None and scroll.isVisible(), name
        assert scroll.widget().isAncestorOf(widget[0].native), name
        body = scroll.widget().minimumSizeHint().height()
        if body > scroll.viewport().height():
            assert scroll.verticalScrollBar().maximum() > 0, name
    extraction = docks["Kernel extraction"]
    assert scroll_area(extraction).widget().isAncestorOf(extraction.result.native)
    # a run's result, at the bottom of a dock shorter than its body, is scrolled to
    worker = extraction.run()
    qtbot.waitUntil(lambda: extraction.worker is None, timeout=30000)
    assert worker is not None and extraction.result.value
    qtbot.wait(20)
    assert not extraction.result.native.visibleRegion().isEmpty()
    # magicgui still drives the moved widgets
    plots = docks["QPI read-outs"]
    assert scroll_area(plots).widget().isAncestorOf(plots.canvas)


def test_long_texts_do_not_widen_the_scrolled_body(viewer, qtbot):
    from napari_qpi.progress import Progress

    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", "Kernel extraction")
    body = scroll_area(widget).widget()
    qtbot.wait(10)
    width = body.minimumSizeHint().width()
    widget.feedback.start(2, "power on 2 layers…")
    widget.feedback.progress(Progress("x" * 500 + " step", 1, 4))
    widget.feedback.show("a layer with a long name " * 5, "residual 0.12 " * 60)
    qtbot.wait(10)
    assert body.minimumSizeHint().width() <= width
    assert widget.native.minimumSizeHint().width() <= width + 30
