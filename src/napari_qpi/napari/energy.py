"""Per-energy display: the energy of the shown slice in meV, and per-slice contrast.

napari's slider shows a slice index; a physicist reads the bias. The readout, drawn on
the canvas, takes the exact (possibly non-uniform) energies from the layer's metadata.
Layers with ``metadata["slice_limits"]`` (observations napari-qpi opened or simulated)
get the contrast limits of the shown slice, since dI/dV changes by orders of magnitude
across a bias sweep.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer


#: Viewers whose readout is installed (weak: a closed viewer is forgotten).
_INSTALLED: weakref.WeakSet = weakref.WeakSet()


def text_overlay(viewer: napari.Viewer):
    """The canvas text overlay (``viewer.canvas.overlays.text`` since napari 0.9)."""
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    return overlays.text if overlays is not None and hasattr(overlays, "text") else (
        viewer.text_overlay)


def energy_index(viewer: napari.Viewer, layer: Layer) -> int | None:
    """Index of the slice of an (E, Y, X) ``layer`` shown at the viewer's current point."""
    if layer.ndim != 3:
        return None
    point = np.asarray(viewer.dims.point, dtype=float)[-3:]
    index = layer.world_to_data(point)[0]
    return int(np.clip(np.round(index), 0, layer.data.shape[0] - 1))


def current_energy(viewer: napari.Viewer, layer: Layer) -> float | None:
    """The energy (meV) of the shown slice of ``layer``, or None for a 2-D layer."""
    from .compute import energies_of

    i = energy_index(viewer, layer)
    energies = energies_of(layer)
    return None if i is None or energies is None else float(energies[i])


def _reference(viewer: napari.Viewer) -> Layer | None:
    """The top visible 3-D layer with energies in its metadata (an observation first)."""
    from .layers import role_of

    layers = [layer for layer in reversed(viewer.layers)
              if layer.visible and layer.ndim == 3 and "energies" in layer.metadata]
    layers.sort(key=lambda layer: role_of(layer) != "observation")
    return layers[0] if layers else None


def update_energy_overlay(viewer: napari.Viewer, *_args) -> str:
    """Write ``E = … meV`` into the viewer's text overlay; return the text."""
    layer = _reference(viewer)
    energy = current_energy(viewer, layer) if layer is not None else None
    text = "" if energy is None else f"E = {energy:.4g} meV"
    overlay = text_overlay(viewer)
    overlay.text = text
    overlay.visible = bool(text)
    return text


def update_slice_contrast(viewer: napari.Viewer, *_args) -> None:
    """Give each layer with ``metadata["slice_limits"]`` the limits of its shown slice."""
    for layer in viewer.layers:
        limits = layer.metadata.get("slice_limits")
        i = energy_index(viewer, layer) if limits else None
        if i is None or len(limits) != layer.data.shape[0]:
            continue
        lo, hi = limits[i]
        lo_range, hi_range = layer.contrast_limits_range
        if lo < lo_range or hi > hi_range:
            layer.contrast_limits_range = (min(lo, lo_range), max(hi, hi_range))
        layer.contrast_limits = (lo, hi)


def install_energy_overlay(viewer: napari.Viewer) -> None:
    """Keep the energy readout and per-slice contrast up to date; idempotent."""
    if viewer in _INSTALLED:
        return
    _INSTALLED.add(viewer)

    def update(*_args):
        update_energy_overlay(viewer)
        update_slice_contrast(viewer)

    viewer.dims.events.current_step.connect(update)
    viewer.layers.events.inserted.connect(update)
    viewer.layers.events.removed.connect(update)
    update()
