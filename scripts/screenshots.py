"""Screenshots of the napari widgets for the user guide.

Run under a virtual display::

    xvfb-run -a python scripts/screenshots.py [OUT_DIR]

Writes ``screenshot-*.png`` into OUT_DIR (default ``docs/images``): the synthetic-data
widget with a generated stack, the extraction widget with its result layers, the
read-out dock (profiles and E(q)), the analysis dock (the kernel stack's E(q)), and
the result layers side by side in grid mode.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else (
    Path(__file__).resolve().parents[1] / "docs" / "images")
SIZE = (1500, 950)


def _settle(seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def _wait(widget) -> None:
    while widget.worker is not None:
        _settle(0.1)


def _shoot(viewer: napari.Viewer, name: str) -> None:
    _settle()
    path = OUT / f"screenshot-{name}.png"
    viewer.screenshot(path, canvas_only=False)
    print("wrote", path)


def main() -> None:
    """Drive a viewer through simulate → extract and save three screenshots."""
    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-qpi")
    viewer.window.resize(*SIZE)

    _, synth = viewer.window.add_plugin_dock_widget("napari-qpi", "Synthetic QPI data")
    synth.family.value = "square"
    synth.n_scatterers.value = 25
    synth.seed.value = 3
    synth.generate()  # in a worker thread
    _wait(synth)
    viewer.dims.set_current_step(0, 5)
    viewer.reset_view()
    _shoot(viewer, "synthetic")

    viewer.window.remove_dock_widget("all")  # the extraction dock gets the whole side
    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", "Kernel extraction")
    widget.image.value = viewer.layers["QPI observation"]  # the default method, blind
    widget.run()
    _wait(widget)
    for layer in viewer.layers:
        layer.visible = layer.name in ("QPI observation kernel", "scatterers",
                                       "QPI observation")
    viewer.layers.selection.active = viewer.layers["QPI observation kernel"]
    viewer.reset_view()
    _shoot(viewer, "extraction")

    viewer.window.remove_dock_widget("all")
    _, plots = viewer.window.add_plugin_dock_widget("napari-qpi", "QPI read-outs")
    plots.symmetry.value = "C4"
    _shoot(viewer, "readouts")

    viewer.window.remove_dock_widget("all")
    _, analysis = viewer.window.add_plugin_dock_widget("napari-qpi", "QPI analysis")
    analysis.layer.value = viewer.layers["QPI observation kernel"]
    analysis.action.value = "E(q) cut"  # the kernel stack's E(q), averaged over directions
    analysis.direction.value = "radial"
    analysis.compute()
    _shoot(viewer, "analysis")

    viewer.window.remove_dock_widget("all")
    keep = ("QPI observation", "true kernel", "QPI observation kernel",
            "QPI observation uncertainty", "QPI observation residual",
            "QPI observation activation")
    for layer in viewer.layers:
        layer.visible = layer.name in keep
    viewer.canvas.grid.enabled = True
    viewer.canvas.grid.stride = 1
    viewer.reset_view()
    _shoot(viewer, "results")
    viewer.close()


if __name__ == "__main__":
    main()
