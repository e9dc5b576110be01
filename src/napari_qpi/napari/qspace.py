"""q-space layers in a canvas of their own, docked beside the viewer's.

A kernel's |FFT| is about 3 Å⁻¹ across: beside maps 256 Å across it is a dot in the
viewer's canvas after *Reset view*, and its Å⁻¹ axes beside Å axes make napari toast
"Inconsistent units across layers" at every layer added. So q-space layers live in a
second :class:`~napari.components.ViewerModel`, drawn by its own ``QtViewer`` in the
*QPI q-space* dock: fitted to its own layers and zoomed on their signal (the ring),
at the energy of the main viewer's slider, with that energy's contrast.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.components import ViewerModel
    from napari.layers import Layer

    from .layers import LayerDataTuple

#: Title of the dock that holds the q-space canvas.
DOCK_NAME = "QPI q-space"

#: Main viewer → its q-space dock (weak: a closed viewer is forgotten).
_DOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@cache
def _dock_class():
    """The dock widget class (Qt imported on first use, not with this module)."""
    from napari.components import ViewerModel
    from napari.qt import QtViewer
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QScrollArea, QSplitter, QVBoxLayout, QWidget

    class QSpaceDock(QWidget):
        """A QtViewer of its own ViewerModel, whose E axis follows the main viewer."""

        def __init__(self, viewer: napari.Viewer) -> None:
            super().__init__()
            self.model = ViewerModel(title=DOCK_NAME)
            self.qt_viewer = QtViewer(self.model)
            # the shown layer's controls (contrast, colormap) above its canvas, in a
            # scroll area so that the canvas keeps most of the height
            controls = QScrollArea()
            controls.setWidgetResizable(True)
            controls.setWidget(self.qt_viewer.controls)
            self.qt_viewer.setMinimumHeight(150)
            split = QSplitter(Qt.Orientation.Vertical)
            split.addWidget(controls)
            split.addWidget(self.qt_viewer)
            split.setStretchFactor(1, 4)
            split.setSizes([120, 480])
            layout = QVBoxLayout(self)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(split)
            self.setMinimumSize(250, 220)  # room for the docks above
            self._main = weakref.ref(viewer)
            # the canvas gets its size only when shown (and when the dock is resized):
            # fit the layers to it then, or they overflow or shrink to a dot
            self.model.canvas.events.size.connect(self.fit)
            viewer.dims.events.current_step.connect(self.follow_energy)

        def watch_window(self) -> None:
            """Close the canvas with the main window, as napari closes its own
            QtViewer (a closed viewer must leave no QtViewer open)."""
            self.window().installEventFilter(self)

        def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
            from qtpy.QtCore import QEvent

            # a programmatic close (viewer.close()) is final; a click on the window's
            # ✕ may still be cancelled, and Qt deletes this child with the window
            if event.type() == QEvent.Type.Close and not event.spontaneous():
                self.close_canvas()
            return False

        def fit(self, *_args) -> None:
            """Fit the view to the q-space layers, then zoom on the signal of the top
            shown one (a ring of 0.2 Å⁻¹ on a ±1.5 Å⁻¹ grid is small otherwise)."""
            model = self.model
            if not model.layers:
                return
            model.reset_view()
            shown = [layer for layer in model.layers if layer.visible]
            radius = signal_radius(shown[-1]) if shown else None
            if not radius:
                return
            zoom = min(model.canvas.size) / (2 * radius)
            if zoom > model.scene.camera.zoom:  # only ever closer than the whole grid
                model.scene.camera.center = (*model.scene.camera.center[:-2], 0.0, 0.0)
                model.scene.camera.zoom = zoom

        def follow_energy(self, *_args) -> None:
            """Show the energy the main viewer shows (the E axis is world axis 0), each
            layer with the contrast of that energy's slice."""
            from .energy import update_energy_overlay, update_slice_contrast

            main = self._main()
            if main is None or self.model.dims.ndim < 3 or main.dims.ndim < 3:
                return
            self.model.dims.set_point(0, main.dims.point[0])
            update_slice_contrast(self.model)
            update_energy_overlay(self.model)  # "E = … meV" on this canvas too

        def close_canvas(self, *_args) -> None:
            """Close the canvas (napari's leak checks count open QtViewers)."""
            qt_viewer, self.qt_viewer = getattr(self, "qt_viewer", None), None
            if qt_viewer is None:  # closed already (the dock, then the window)
                return
            qt_viewer.close()
            main = self._main()
            if main is not None:
                main.dims.events.current_step.disconnect(self.follow_energy)

    return QSpaceDock


def signal_radius(layer: Layer) -> float | None:
    """|q| (world units) within which a centred q-space layer holds its signal: the
    :func:`.readouts.signal_range` of its slices' radial profiles, q = 0 left out."""
    import numpy as np

    from .readouts import radial_profile, signal_range

    data = np.asarray(layer.data, dtype=float)
    if data.ndim not in (2, 3) or min(data.shape[-2:]) < 8:
        return None
    stack = data.reshape(-1, *data.shape[-2:])
    profiles = np.asarray([radial_profile(s)[1] for s in stack])
    r = np.arange(profiles.shape[-1], dtype=float)
    return float(signal_range(r, profiles, q_min=0.5)) * abs(float(layer.scale[-1]))


def _docked(dock) -> bool:
    """Whether ``dock`` is still in the window: closing it (its ✕) takes it out, and
    the next q-space layers then get a new canvas."""
    try:
        from qtpy import sip

        deleted = sip.isdeleted(dock)
    except ImportError:  # pragma: no cover - PySide
        import shiboken6

        deleted = not shiboken6.isValid(dock)
    return not deleted and dock.parent() is not None and dock.qt_viewer is not None


def q_viewer(viewer: napari.Viewer, create: bool = True) -> ViewerModel | None:
    """The q-space ViewerModel docked beside ``viewer`` (made on first use).

    Returns None when it does not exist and ``create`` is False, or when ``viewer``
    has no window (a ViewerModel without Qt): q-space layers then go into ``viewer``.
    """
    dock = _DOCKS.get(viewer)
    if dock is not None and _docked(dock):
        return dock.model
    if not create or getattr(viewer, "window", None) is None:
        return None
    if dock is not None:  # closed by the user: free its canvas
        dock.close_canvas()
    dock = _dock_class()(viewer)
    viewer.window.add_dock_widget(dock, name=DOCK_NAME, area="right",
                                  tabify=False)
    dock.watch_window()
    _DOCKS[viewer] = dock
    return dock.model


def show_q_layers(viewer: napari.Viewer, tuples: Sequence[LayerDataTuple]
                  ) -> list[Layer]:
    """Add or update q-space layer tuples in the q-space canvas of ``viewer``; fit the
    canvas to them and show the main viewer's energy."""
    from .layers import apply_layers

    model = q_viewer(viewer)
    if model is None:
        return apply_layers(viewer, tuples)
    _drop_other_units(model, tuples)
    layers = apply_layers(model, tuples)
    for layer in model.layers:  # the latest run's q-space is what is looked at
        layer.visible = any(layer is new for new in layers)
    if layers:
        model.layers.selection.active = layers[-1]  # its controls are the ones shown
    _DOCKS[viewer].fit()
    _DOCKS[viewer].follow_energy()
    return layers


def _drop_other_units(model: ViewerModel, tuples: Sequence[LayerDataTuple]) -> list[str]:
    """Remove q-space layers whose units clash with the new ones'; return their names.

    The |FFT| of a layer in pixels is in 1/pixel (and its E axis in pixels): beside
    1/Å layers in meV napari toasts "Inconsistent units across layers" at every layer
    event of the canvas. Only the latest run's |FFT| is shown anyway; the others'
    kernels stay in the main viewer.
    """
    import pint

    registry = pint.get_application_registry()

    def kinds(units) -> tuple | None:  # dimensionality per axis, last axis first
        try:
            return tuple(registry.Unit(str(u)).dimensionality for u in reversed(units))
        except Exception:  # an odd unit string: napari would not read it either
            return None

    new = [kinds(kwargs.get("units", ())) for _, kwargs, _ in tuples]

    def clashes(layer) -> bool:
        mine = kinds(layer.units)
        return any(mine is None or other is None
                   or any(a != b for a, b in zip(mine, other)) for other in new)

    old = [layer for layer in model.layers if clashes(layer)]
    for layer in old:
        model.layers.remove(layer)
    return [layer.name for layer in old]
