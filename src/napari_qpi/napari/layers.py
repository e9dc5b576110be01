"""LayerDataTuples from library objects, with one coordinate system for all.

Every layer napari-qpi makes speaks the same geometry: axes ``("E", "y", "x")`` in
``("meV", "angstrom", "angstrom")``, the energy step as the E scale, Å per pixel as the
y/x scale. Kernels sit with their centre pixel (the scatterer) on the origin. The
functions here build ``(data, kwargs, layer_type)`` tuples and put them into a viewer;
they never compute anything physical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

    from ..extraction.extract import Extraction
    from ..physics.simulation import Simulation

UNITS = ("meV", "angstrom", "angstrom")
AXIS_LABELS = ("E", "y", "x")

#: Layer names the synthetic-data widget and the sample data produce.
OBSERVATION_NAME = "QPI observation"
TRUE_KERNEL_NAME = "true kernel"
POSITIONS_NAME = "scatterers"

#: Suffixes of the layers an extraction produces, in the order they are added.
RESULT_SUFFIXES = ("residual", "activation", "uncertainty", "kernel |FFT|", "kernel")

LayerDataTuple = tuple[Any, dict, str]


def stack_kwargs(energies: np.ndarray, pixel_size: float) -> dict:
    """scale/translate/units/axis_labels for an (E, Y, X) layer.

    Parameters
    ----------
    energies : (E,) array_like
        Energies in meV. The energy step is their mean spacing; the exact (possibly
        non-uniform) energies belong in the layer's metadata.
    pixel_size : float
        Å per pixel.

    Returns
    -------
    dict
        Keyword arguments for an Image layer.
    """
    energies = np.asarray(energies, dtype=float)
    step = float(np.mean(np.diff(energies))) if energies.size > 1 else 1.0
    if step == 0:
        step = 1.0
    return {
        "scale": (step, pixel_size, pixel_size),
        "translate": (float(energies[0]), 0.0, 0.0),
        "units": UNITS,
        "axis_labels": AXIS_LABELS,
    }


def geometry(layer: Layer) -> dict:
    """The source layer's scale, translate, units and axis labels as plain tuples."""
    return {
        "scale": tuple(float(s) for s in layer.scale),
        "translate": tuple(float(t) for t in layer.translate),
        "units": tuple(str(u) for u in layer.units),
        "axis_labels": tuple(str(a) for a in layer.axis_labels),
    }


def _last(geom: dict, n: int) -> dict:
    """The geometry of the last ``n`` axes."""
    return {key: value[-n:] for key, value in geom.items()}


def centred(geom: dict, k: int) -> dict:
    """Geometry for a (…, k, k) window whose centre pixel sits on the y/x origin."""
    scale, translate = geom["scale"], list(geom["translate"])
    half = k // 2
    translate[-2] = -half * scale[-2]
    translate[-1] = -half * scale[-1]
    return {**geom, "translate": tuple(translate)}


def symmetric_limits(data: np.ndarray, percentile: float = 99.5) -> tuple[float, float]:
    """Contrast limits ±(a high percentile of |data|), zero in the middle of the colormap.

    The percentile keeps the few bright core pixels of a kernel from washing out its
    oscillating tail.
    """
    m = float(np.percentile(np.abs(data), percentile)) if np.size(data) else 1.0
    return (-m, m) if m > 0 else (-1.0, 1.0)


def is_result(layer: Layer) -> bool:
    """Whether ``layer`` is an output of an extraction (see :func:`result_layers`)."""
    return {"method", "source"} <= set(layer.metadata)


def synthetic_layers(sim: Simulation) -> list[LayerDataTuple]:
    """The observation, its true kernel and the scatterer positions as layer tuples.

    The observation carries ``metadata["ground_truth"] = {kernel, positions, energies,
    pixel_size, kernels, types}`` so an extraction run on it can be scored. Positions
    are (row, col) pixels scaled to Å, like the observation's y/x axes.
    """
    kw = stack_kwargs(sim.energies, sim.pixel_size)
    truth = {"kernel": sim.kernel, "positions": sim.positions, "energies": sim.energies,
             "pixel_size": sim.pixel_size, "kernels": sim.kernels, "types": sim.types}
    obs_meta = {"ground_truth": truth, "energies": sim.energies.tolist(),
                "pixel_size": sim.pixel_size, "simulation": sim.metadata}
    obs = (sim.observation, {**kw, "name": OBSERVATION_NAME, "colormap": "gray",
                             "metadata": obs_meta}, "image")
    ker = (sim.kernel, {**centred(kw, sim.kernel.shape[-1]), "name": TRUE_KERNEL_NAME,
                        "colormap": "RdBu_r", "contrast_limits": symmetric_limits(sim.kernel),
                        "metadata": {"energies": sim.energies.tolist(),
                                     "pixel_size": sim.pixel_size},
                        "visible": False}, "image")
    pts = (np.asarray(sim.positions, dtype=float),
           {"name": POSITIONS_NAME, "scale": kw["scale"][1:], "translate": (0.0, 0.0),
            "units": kw["units"][1:], "axis_labels": kw["axis_labels"][1:],
            "size": 3, "face_color": "yellow", "border_color": "black",
            "metadata": {"types": np.asarray(sim.types).tolist()}}, "points")
    return [obs, ker, pts]


def kernel_fft(kernel: np.ndarray) -> np.ndarray:
    """|FFT| of each kernel slice, fftshifted so that q = 0 is the centre pixel."""
    return np.fft.fftshift(np.abs(np.fft.fft2(kernel)), axes=(-2, -1)).astype(np.float32)


def result_layers(extraction: Extraction, source: Layer, *,
                  scores: dict | None = None) -> list[LayerDataTuple]:
    """Layer tuples for an :class:`~napari_qpi.extraction.extract.Extraction`.

    Parameters
    ----------
    extraction : Extraction
        What :func:`napari_qpi.extract` returned for ``source``'s data.
    source : napari.layers.Image
        The layer the observation came from; its geometry is copied.
    scores : dict, optional
        Similarities to the ground truth, stored in the kernel layer's metadata.

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``"<source> residual"``, ``"<source> activation"``, ``"<source> uncertainty"``
        (when the method gives one), ``"<source> kernel |FFT|"`` and
        ``"<source> kernel"``. The kernel layers are centred on the y/x origin and keep
        the source's E axis; the |FFT| layer is drawn on the kernel's pixel grid, with
        one pixel = ``metadata["q_step"]`` Å⁻¹.
    """
    geom = geometry(source)
    name = source.name
    kernel = _like(extraction.kernel, source.ndim)
    residual = _like(extraction.residual, source.ndim)
    k = kernel.shape[-1]
    kgeom = centred(_last(geom, kernel.ndim), k)
    pixel_size = extraction.info.get("pixel_size")
    meta = {"method": extraction.method, "source": name,
            "info": dict(extraction.info), "scores": dict(scores or {})}
    if "energies" in source.metadata:
        meta["energies"] = list(source.metadata["energies"])
    out: list[LayerDataTuple] = [
        (residual, {**_last(geom, residual.ndim),
                               "name": f"{name} residual", "colormap": "gray",
                               "metadata": meta, "visible": False}, "image"),
        (extraction.activation, {**_last(geom, 2), "name": f"{name} activation",
                                 "colormap": "inferno", "blending": "additive",
                                 "metadata": meta, "visible": False}, "image"),
    ]
    if extraction.uncertainty is not None:
        unc = _like(extraction.uncertainty, source.ndim)
        out.append((unc, {**kgeom, "name": f"{name} uncertainty", "colormap": "viridis",
                          "metadata": meta, "visible": False}, "image"))
    q_step = 2 * np.pi / (k * pixel_size) if pixel_size else None
    out.append((kernel_fft(kernel), {**kgeom, "name": f"{name} kernel |FFT|",
                                     "colormap": "magma", "visible": False,
                                     "metadata": {**meta, "q_step": q_step}}, "image"))
    out.append((kernel, {**kgeom, "name": f"{name} kernel", "colormap": "RdBu_r",
                         "contrast_limits": symmetric_limits(kernel),
                         "metadata": {**meta, "latent": extraction.latent}}, "image"))
    return out


def _like(array, ndim: int) -> np.ndarray:
    """Drop a leading length-1 energy axis the source layer does not have."""
    array = np.asarray(array)
    while array.ndim > ndim and array.shape[0] == 1:
        array = array[0]
    return array


#: Properties kept from the user when a layer is updated in place.
_KEEP_ON_UPDATE = ("visible", "colormap", "blending", "opacity", "face_color",
                   "border_color", "size")


def apply_layers(viewer: napari.Viewer, tuples: Sequence[LayerDataTuple]) -> list[Layer]:
    """Add layer tuples to ``viewer``, updating layers of the same name in place.

    A layer with the tuple's name, type and dimensionality gets the new data and
    geometry (keeping the user's visibility and colours); one of another type or
    dimensionality is replaced. Re-running a widget therefore never piles up layers.

    Returns
    -------
    list of napari.layers.Layer
        The updated or added layers, in the order of ``tuples``.
    """
    from napari.layers import Layer

    layers = []
    for data, kwargs, layer_type in tuples:
        name = kwargs["name"]
        old = viewer.layers[name] if name in viewer.layers else None
        if old is not None and not _same_kind(old, data, layer_type):
            viewer.layers.remove(old)
            old = None
        if old is None:
            layers.append(viewer.add_layer(Layer.create(data, dict(kwargs), layer_type)))
            continue
        old.data = data
        for key, value in kwargs.items():
            if key not in _KEEP_ON_UPDATE and key != "name":
                setattr(old, key, value)
        if layer_type == "image" and "contrast_limits" not in kwargs:
            old.reset_contrast_limits()
        layers.append(old)
    return layers


def _same_kind(layer: Layer, data, layer_type: str) -> bool:
    """Whether ``layer`` can take ``data`` in place (same type and dimensionality)."""
    import napari.layers

    if not isinstance(layer, getattr(napari.layers, layer_type.title())):
        return False
    ndim = np.shape(data)[1] if layer_type == "points" else np.ndim(data)
    return layer.ndim == ndim
