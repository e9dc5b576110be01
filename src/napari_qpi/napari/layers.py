"""LayerDataTuples from library objects, with one coordinate system for all.

Every layer napari-qpi makes speaks the same geometry: axes ``("E", "y", "x")`` in
``("meV", "angstrom", "angstrom")``, the energy step as the E scale, Å per pixel as the
y/x scale. Kernels sit with their centre pixel (the scatterer) on the origin; q-space
layers are in Å⁻¹ with q = 0 on the origin (see :mod:`.results`). Each layer says what it
is in ``metadata["qpi_role"]`` (:data:`ROLES`), so widgets never offer an output or a
ground truth as the observation. The functions here build ``(data, kwargs, layer_type)``
tuples and put them into a viewer; they never compute anything physical.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

    from ..physics.simulation import Simulation

UNITS = ("meV", "angstrom", "angstrom")
Q_UNITS = ("meV", "1/angstrom", "1/angstrom")
AXIS_LABELS = ("E", "y", "x")
Q_AXIS_LABELS = ("E", "qy", "qx")

#: Layer names the synthetic-data widget and the sample data produce.
OBSERVATION_NAME = "QPI observation"
TRUE_KERNEL_NAME = "true kernel"
POSITIONS_NAME = "scatterers"

#: ``metadata["qpi_role"]`` values: what a napari-qpi layer holds.
ROLES = ("observation", "truth", "positions", "result")
ROLE = "qpi_role"

LayerDataTuple = tuple[Any, dict, str]


def stack_kwargs(energies: np.ndarray, pixel_size: float | None) -> dict:
    """scale/translate/units/axis_labels for an (E, Y, X) layer.

    Parameters
    ----------
    energies : (E,) array_like
        Energies in meV. The energy step is their mean spacing; the exact (possibly
        non-uniform) energies belong in the layer's metadata.
    pixel_size : float or None
        Å per pixel; None (unknown) draws one pixel per unit.

    Returns
    -------
    dict
        Keyword arguments for an Image layer.
    """
    energies = np.asarray(energies, dtype=float)
    step = float(np.mean(np.diff(energies))) if energies.size > 1 else 1.0
    if step == 0:
        step = 1.0
    px = float(pixel_size) if pixel_size else 1.0
    units = UNITS if pixel_size else ("meV", "pixel", "pixel")
    return {
        "scale": (step, px, px),
        "translate": (float(energies[0]), 0.0, 0.0),
        "units": units,
        "axis_labels": AXIS_LABELS,
    }


#: The keyword arguments that place a layer in the world.
GEOMETRY_KEYS = ("scale", "translate", "units", "axis_labels")


def single_energy(data, kwargs: dict) -> tuple[Any, dict]:
    """A one-energy (1, Y, X) stack as a (Y, X) map with the y/x geometry of ``kwargs``.

    One energy has no step: an E scale of 1 meV invented for it made napari's slider
    take 1 meV steps beside a real stack, and the map (and its outputs) showed at one
    energy only. A 2-D layer shows at every energy; ``metadata["energies"]`` keeps its
    bias. Anything else is returned unchanged.
    """
    if np.ndim(data) != 3 or np.shape(data)[0] != 1:
        return data, kwargs
    geom = {key: tuple(kwargs[key])[-2:] for key in GEOMETRY_KEYS if key in kwargs}
    return data[0], {**kwargs, **geom}


def geometry(layer: Layer) -> dict:
    """The source layer's scale, translate, units and axis labels as plain tuples."""
    return {
        "scale": tuple(float(s) for s in layer.scale),
        "translate": tuple(float(t) for t in layer.translate),
        "units": tuple(str(u) for u in layer.units),
        "axis_labels": tuple(str(a) for a in layer.axis_labels),
    }


def last_axes(geom: dict, n: int) -> dict:
    """The geometry of the last ``n`` axes."""
    return {key: value[-n:] for key, value in geom.items()}


def centred(geom: dict, k: int) -> dict:
    """Geometry for a (…, k, k) window whose centre pixel sits on the y/x origin."""
    scale, translate = geom["scale"], list(geom["translate"])
    half = k // 2
    translate[-2] = -half * scale[-2]
    translate[-1] = -half * scale[-1]
    return {**geom, "translate": tuple(translate)}


def symmetric_limits(data, percentile: float = 99.5) -> tuple[float, float]:
    """Contrast limits ±(a high percentile of |data|), zero in the middle of the colormap.

    The percentile keeps the few bright core pixels of a kernel from washing out its
    oscillating tail.
    """
    data = np.asarray(data, dtype=float)
    m = float(np.nanpercentile(np.abs(data), percentile)) if data.size else 1.0
    return (-m, m) if np.isfinite(m) and m > 0 else (-1.0, 1.0)


def robust_limits(data, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """Contrast limits between two percentiles of ``data``.

    A few saturated pixels (a lock-in overload, the q = 0 peak of an |FFT|) no longer
    set the colour scale of the whole layer.
    """
    data = np.asarray(data, dtype=float)
    if not data.size:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.nanpercentile(data, (low, high)))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + (abs(lo) or 1.0))


def slice_limits(data) -> list[tuple[float, float]] | None:
    """:func:`robust_limits` of each slice of an (E, Y, X) stack (None for a 2-D map).

    Stored as ``metadata["slice_limits"]``: the viewer then shows every energy with its
    own contrast (see :func:`.energy.install_energy_overlay`); dI/dV changes by orders
    of magnitude across a bias sweep, so one colour scale leaves most slices black.
    """
    data = np.asarray(data)
    if data.ndim != 3:
        return None
    return [robust_limits(s) for s in data]


def role_of(layer: Layer) -> str | None:
    """What a layer holds (one of :data:`ROLES`), or None for a layer of the user's.

    Outputs of older runs carry only ``method`` and ``source`` in their metadata.
    """
    role = layer.metadata.get(ROLE)
    if role is None and {"method", "source"} <= set(layer.metadata):
        return "result"
    return role


def is_result(layer: Layer) -> bool:
    """Whether ``layer`` is an output of an extraction."""
    return role_of(layer) == "result"


def observation_candidates(layers: Iterable[Layer]) -> list[Layer]:
    """Image layers that can be an observation, the ones marked as observations first.

    Outputs, ground truths, RGB and multiscale images and layers that are not 2-D or
    3-D are never offered.
    """
    from napari.layers import Image

    usable = [layer for layer in layers
              if isinstance(layer, Image) and role_of(layer) in (None, "observation")
              and not layer.rgb and not layer.multiscale and layer.ndim in (2, 3)]
    return sorted(usable, key=lambda layer: role_of(layer) != "observation")


def synthetic_layers(sim: Simulation) -> list[LayerDataTuple]:
    """The observation, its true kernel and the scatterer positions as layer tuples.

    The observation carries ``metadata["ground_truth"] = {kernel, positions, energies,
    pixel_size, kernels, types}`` so an extraction run on it can be scored. Positions
    are (row, col) pixels scaled to Å, like the observation's y/x axes.
    """
    kw = stack_kwargs(sim.energies, sim.pixel_size)
    observation, okw = single_energy(sim.observation, kw)
    kernel, kkw = single_energy(sim.kernel, centred(kw, sim.kernel.shape[-1]))
    truth = {"kernel": sim.kernel, "positions": sim.positions, "energies": sim.energies,
             "pixel_size": sim.pixel_size, "kernels": sim.kernels, "types": sim.types}
    obs_meta = {ROLE: "observation", "ground_truth": truth,
                "slice_limits": slice_limits(observation),
                "energies": sim.energies.tolist(), "pixel_size": sim.pixel_size,
                "simulation": sim.metadata}
    obs = (observation, {**okw, "name": OBSERVATION_NAME, "colormap": "gray",
                         "contrast_limits": robust_limits(observation),
                         "metadata": obs_meta}, "image")
    ker = (kernel, {**kkw, "name": TRUE_KERNEL_NAME,
                    "colormap": "RdBu_r", "contrast_limits": symmetric_limits(kernel),
                    "metadata": {ROLE: "truth", "energies": sim.energies.tolist(),
                                 "pixel_size": sim.pixel_size},
                    "visible": False}, "image")
    pts = (np.asarray(sim.positions, dtype=float),
           {"name": POSITIONS_NAME, "scale": kw["scale"][1:], "translate": (0.0, 0.0),
            "units": kw["units"][1:], "axis_labels": kw["axis_labels"][1:],
            "size": 3, "face_color": "yellow", "border_color": "black",
            "metadata": {ROLE: "positions", "types": np.asarray(sim.types).tolist()}},
           "points")
    return [obs, ker, pts]


#: Properties kept from the user when a layer is updated in place.
_KEEP_ON_UPDATE = ("visible", "colormap", "blending", "opacity", "face_color",
                   "border_color", "size")


def apply_layers(viewer: napari.Viewer, tuples: Sequence[LayerDataTuple]) -> list[Layer]:
    """Add layer tuples to ``viewer``, updating layers of the same name in place.

    A layer with the tuple's name, type and dimensionality gets the new data, geometry
    and contrast limits (keeping the user's visibility and colours); one of another
    type or dimensionality is replaced. Re-running a widget therefore never piles up
    layers, and every run's outputs get contrast limits of their own data (napari does
    not slice a hidden layer, so it cannot find them itself).

    Returns
    -------
    list of napari.layers.Layer
        The updated or added layers, in the order of ``tuples``.
    """
    from napari.layers import Layer

    layers = []
    for data, kwargs, layer_type in tuples:
        kwargs = dict(kwargs)
        if layer_type == "image" and "contrast_limits" not in kwargs:
            kwargs["contrast_limits"] = robust_limits(data)
        name = kwargs["name"]
        old = viewer.layers[name] if name in viewer.layers else None
        if old is not None and not _same_kind(old, data, layer_type):
            viewer.layers.remove(old)
            old = None
        if old is None:
            layers.append(viewer.add_layer(Layer.create(data, kwargs, layer_type)))
            continue
        old.data = data
        for key, value in kwargs.items():
            if key in _KEEP_ON_UPDATE or key == "name":
                continue
            if key == "contrast_limits":  # widen the range first, or napari clips
                lo, hi = value
                finite = np.asarray(data, dtype=float)
                rng = (min(lo, float(np.nanmin(finite))), max(hi, float(np.nanmax(finite))))
                old.contrast_limits_range = rng
            setattr(old, key, value)
        layers.append(old)
    return layers


def _same_kind(layer: Layer, data, layer_type: str) -> bool:
    """Whether ``layer`` can take ``data`` in place (same type and dimensionality)."""
    import napari.layers

    if not isinstance(layer, getattr(napari.layers, layer_type.title())):
        return False
    ndim = np.shape(data)[1] if layer_type == "points" else np.ndim(data)
    return layer.ndim == ndim
