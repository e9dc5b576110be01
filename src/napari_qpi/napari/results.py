"""An :class:`~napari_qpi.extraction.extract.Extraction` as napari layers.

Outputs take their geometry from the observation's layer: the residual on the
observation's grid and colour scale (how a physicist judges what the kernel leaves
unexplained), the activation on its y/x grid, the kernel (and its uncertainty) centred
on the origin, and the kernel's |FFT| in Å⁻¹ with q = 0 on the origin. Outputs a run
did not produce (an uncertainty from an earlier learned run) are removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .layers import (
    Q_AXIS_LABELS,
    Q_UNITS,
    ROLE,
    LayerDataTuple,
    apply_layers,
    centred,
    geometry,
    is_result,
    last_axes,
    robust_limits,
    symmetric_limits,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

    from ..extraction.extract import Extraction

#: Suffixes of the layers an extraction can produce, in the order they are added (with
#: several species, each but the residual once per species, plus its scatterers).
RESULT_SUFFIXES = ("residual", "activation", "uncertainty", "kernel |FFT|", "kernel")


def kernel_fft(kernel: np.ndarray) -> np.ndarray:
    """|FFT| of each kernel slice, fftshifted so that q = 0 is the centre pixel."""
    return np.fft.fftshift(np.abs(np.fft.fft2(kernel)), axes=(-2, -1)).astype(np.float32)


def q_geometry(geom: dict, k: int, pixel_size: float | None) -> dict:
    """Geometry of a fftshifted (…, k, k) |FFT|: Å⁻¹ per pixel, q = 0 on the origin.

    Without a pixel size the q step is 2π over the window in the layer's own x scale
    (rad/px for a layer of scale 1), so a console layer drawn at 2 units a pixel gets
    an |FFT| at half the q step, as its real-space kernel is twice as wide.
    """
    n = len(geom["scale"])
    step = float(pixel_size) if pixel_size else float(geom["scale"][-1]) or 1.0
    q_step = 2 * np.pi / (k * step)
    unit = Q_UNITS[-1] if pixel_size else _inverse(geom["units"][-1])
    scale = (*geom["scale"][:-2], q_step, q_step)
    translate = (*geom["translate"][:-2], -(k // 2) * q_step, -(k // 2) * q_step)
    units = (*geom["units"][:-2], unit, unit)
    labels = (*geom["axis_labels"][:-2], *Q_AXIS_LABELS[-2:])
    return {"scale": scale[-n:], "translate": translate[-n:], "units": units[-n:],
            "axis_labels": labels[-n:]}


def _inverse(unit: str) -> str:
    """``"1/<unit>"`` when pint reads it (a console layer's own units), else 1/pixel."""
    import pint

    try:
        pint.get_application_registry().Unit(f"1/{unit}")
    except Exception:  # an odd unit string: q in the pixel's own terms
        return "1/pixel"
    return f"1/{unit}"


def residual_limits(source_data: np.ndarray) -> tuple[float, float]:
    """± the observation's own spread (per-slice mean removed): the residual's scale."""
    data = np.asarray(source_data, dtype=float)
    centred_data = data - data.mean(axis=(-2, -1), keepdims=True)
    return symmetric_limits(centred_data)


def result_layers(extraction: Extraction, source: Layer, *, scores: dict | None = None,
                  reference: np.ndarray | None = None) -> list[LayerDataTuple]:
    """Layer tuples for an :class:`~napari_qpi.extraction.extract.Extraction`.

    Parameters
    ----------
    extraction : Extraction
        What :func:`napari_qpi.extract` returned for ``source``'s data.
    source : napari.layers.Image
        The layer the observation came from; its geometry is copied.
    scores : dict, optional
        Similarities to the ground truth, stored in the kernel layer's metadata.
    reference : ndarray, optional
        The data actually fitted (after preprocessing), whose colour scale the residual
        takes; default the source layer's data.

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``"<source> residual"``, ``"<source> activation"``, ``"<source> uncertainty"``
        (when the method gives one), ``"<source> kernel |FFT|"`` and
        ``"<source> kernel"``, each with contrast limits of its own data (the residual:
        the observation's). The kernel layers are centred on the y/x origin and keep
        the source's E axis; the |FFT| layer is in Å⁻¹ (``metadata["q_step"]`` per
        pixel) with q = 0 on the origin.
    """
    geom = geometry(source)
    name = source.name
    kernel = _like(extraction.kernel, source.ndim)
    residual = _like(extraction.residual, source.ndim)
    k = kernel.shape[-1]
    kgeom = centred(last_axes(geom, kernel.ndim), k)
    pixel_size = extraction.info.get("pixel_size")
    meta = {ROLE: "result", "method": extraction.method, "source": name,
            "info": dict(extraction.info), "scores": dict(scores or {})}
    if "energies" in source.metadata:
        meta["energies"] = list(source.metadata["energies"])
    out: list[LayerDataTuple] = [
        (residual, {**last_axes(geom, residual.ndim), "name": f"{name} residual",
                    "colormap": "gray", "contrast_limits": residual_limits(
                        source.data if reference is None else reference),
                    "metadata": meta, "visible": False}, "image"),
        (extraction.activation, {**last_axes(geom, 2), "name": f"{name} activation",
                                 "colormap": "inferno", "blending": "additive",
                                 "contrast_limits": _positive_limits(extraction.activation),
                                 "metadata": meta, "visible": False}, "image"),
    ]
    if extraction.uncertainty is not None:
        unc = _like(extraction.uncertainty, source.ndim)
        out.append((unc, {**kgeom, "name": f"{name} uncertainty", "colormap": "viridis",
                          "contrast_limits": _positive_limits(unc),
                          "metadata": meta, "visible": False}, "image"))
    if extraction.info.get("n_types", 1) > 1:
        return out[:1] + species_layers(extraction, source, meta, kgeom, pixel_size)
    fft = kernel_fft(kernel)
    qgeom = q_geometry(kgeom, k, pixel_size)
    fmeta = {**meta, "q_step": qgeom["scale"][-1]}
    if fft.ndim == 3:  # each energy's own contrast: the kernel's amplitude varies with E
        fmeta["slice_limits"] = [_positive_limits(s) for s in fft]
    out.append((fft, {**qgeom, "name": f"{name} kernel |FFT|", "colormap": "magma",
                      "contrast_limits": _positive_limits(fft), "visible": False,
                      "metadata": fmeta}, "image"))
    out.append((kernel, {**kgeom, "name": f"{name} kernel", "colormap": "RdBu_r",
                         "contrast_limits": symmetric_limits(kernel),
                         "metadata": {**meta, "latent": extraction.latent}}, "image"))
    return out


#: One colour per defect species: its scatterer map, its points and its layer names.
SPECIES_COLOURS = ("cyan", "magenta", "yellow", "green")


def species_layers(extraction: Extraction, source: Layer, meta: dict, kgeom: dict,
                   pixel_size: float | None) -> list[LayerDataTuple]:
    """Per species: its kernel, the kernel's |FFT|, its scatterer map and a Points
    layer of its scatterers, named ``"<source> … species N"`` and coloured by species."""
    geom = geometry(source)
    name = source.name
    out: list[LayerDataTuple] = []
    for t, (kern, act) in enumerate(zip(extraction.kernel, extraction.activation)):
        colour = SPECIES_COLOURS[t % len(SPECIES_COLOURS)]
        tag = f"species {t + 1}"
        kernel = _like(kern, source.ndim)
        k = kernel.shape[-1]
        tmeta = {**meta, "species": t + 1}
        out.append((act, {**last_axes(geom, 2), "name": f"{name} activation, {tag}",
                          "colormap": colour, "blending": "additive",
                          "contrast_limits": _positive_limits(act), "metadata": tmeta,
                          "visible": False}, "image"))
        pts = np.argwhere(np.asarray(act) > 0).astype(float)
        pgeom = last_axes(geom, 2)
        # the map's units too: a Points layer in napari's default pixels beside Å
        # layers toasts "Inconsistent units across layers" at every layer event
        out.append((pts, {**pgeom, "name": f"{name} scatterers, {tag}", "face_color": colour,
                          "border_color": colour, "size": 3, "metadata": tmeta},
                    "points"))
        fft = kernel_fft(kernel)
        qgeom = q_geometry(kgeom, k, pixel_size)
        out.append((fft, {**qgeom, "name": f"{name} kernel |FFT|, {tag}",
                          "colormap": "magma", "contrast_limits": _positive_limits(fft),
                          "visible": False,
                          "metadata": {**tmeta, "q_step": qgeom["scale"][-1]}}, "image"))
        out.append((kernel, {**kgeom, "name": f"{name} kernel, {tag}", "colormap": "RdBu_r",
                             "contrast_limits": symmetric_limits(kernel),
                             "metadata": tmeta}, "image"))
    return out


def _positive_limits(data) -> tuple[float, float]:
    hi = robust_limits(data, 0.0, 99.5)[1]
    return (0.0, hi if hi > 0 else 1.0)


def _like(array, ndim: int) -> np.ndarray:
    """Drop a leading length-1 energy axis the source layer does not have."""
    array = np.asarray(array)
    while array.ndim > ndim and array.shape[0] == 1:
        array = array[0]
    return array


def remove_stale(viewer: napari.Viewer, source: str, keep: set[str]) -> list[str]:
    """Remove outputs of earlier runs on ``source`` that are not in ``keep``, from the
    viewer and from its q-space canvas (:mod:`.qspace`).

    Returns the names removed (an uncertainty a later classical run did not make).
    """
    from .qspace import q_viewer

    removed = []
    for holder in (viewer, q_viewer(viewer, create=False)):
        if holder is None:
            continue
        stale = [layer for layer in holder.layers
                 if is_result(layer) and layer.metadata.get("source") == source
                 and layer.name not in keep]
        for layer in stale:
            holder.layers.remove(layer)
        removed += [layer.name for layer in stale]
    return removed


def is_q_space(kwargs: dict) -> bool:
    """Whether a layer tuple's kwargs describe a q-space layer (axes in 1/length)."""
    return any(str(unit).startswith("1/") for unit in kwargs.get("units", ()))


def show_result(viewer: napari.Viewer, source: Layer, extraction: Extraction, *,
                scores: dict | None = None, reference: np.ndarray | None = None
                ) -> list[Layer]:
    """Add or update the result layers of ``extraction`` in ``viewer``.

    Outputs of an earlier run on the same source that this run did not produce are
    removed. The kernel's |FFT| goes to the q-space canvas docked beside the viewer
    (:func:`.qspace.q_viewer`). The layer selection is left as it was, so a second run
    starts from the same input. ``reference``: the data fitted, when preprocessing changed it.
    """
    from .qspace import show_q_layers

    tuples = result_layers(extraction, source, scores=scores, reference=reference)
    selected, active = set(viewer.layers.selection), viewer.layers.selection.active
    remove_stale(viewer, source.name, {kw["name"] for _, kw, _ in tuples})
    real = [t for t in tuples if not is_q_space(t[1])]
    q_tuples = [t for t in tuples if is_q_space(t[1])]
    # q-space in its own canvas: fitted to it, and no unit clash with Å layers
    layers = apply_layers(viewer, real) + show_q_layers(viewer, q_tuples)
    viewer.layers.selection.clear()
    viewer.layers.selection.update(selected & set(viewer.layers))
    if active in viewer.layers:
        viewer.layers.selection.active = active
    return layers
