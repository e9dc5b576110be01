"""Extraction on napari layers: shared by the widget and the console helper.

:func:`prepare` turns layers into a validated :class:`Request`, :meth:`Request.steps`
is the library's :func:`~napari_qpi.extraction.extract.iter_extract` generator, and
:func:`show_result` puts the :class:`~napari_qpi.extraction.extract.Extraction` into
the viewer. :func:`extract_layer` chains the three synchronously.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .layers import apply_layers, result_layers

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

    from ..extraction.extract import Extraction, Progress

#: Units that mean Å for a layer's y/x axes.
_ANGSTROM = {"angstrom", "Å", "ångström", "Angstrom"}


def methods() -> list[str]:
    """Extraction methods registered right now (read at call time)."""
    from ..extraction.extract import METHODS

    return list(METHODS)


def default_method() -> str:
    """``"two-stage"`` when registered, else the first registered method."""
    names = methods()
    return "two-stage" if "two-stage" in names else names[0]


def devices() -> list[str]:
    """``"cpu"`` plus ``"cuda"``/``"mps"`` where torch reports them (torch loads here)."""
    out = ["cpu"]
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return out
    if torch.cuda.is_available():
        out.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


@dataclass(frozen=True)
class Request:
    """A validated extraction of one layer.

    Attributes
    ----------
    source : napari.layers.Image
        The layer whose data is the observation.
    observation : (Y, X) or (E, Y, X) ndarray
    positions : (N, 2) ndarray or None
        Scatterer pixels (row, col) in the observation's pixel grid.
    method : str
    kernel_size, device, pixel_size :
        Passed on to :func:`~napari_qpi.extraction.extract.iter_extract`.
    """

    source: Layer
    observation: np.ndarray
    positions: np.ndarray | None
    method: str
    kernel_size: int | None
    device: str | None
    pixel_size: float | None
    preprocess: tuple[str, ...] = ()

    def steps(self) -> Generator[Progress, None, Extraction]:
        """The extraction as a generator of progress events returning the result."""
        from ..extraction.extract import Progress, iter_extract

        data = self.observation
        if self.preprocess:
            # on a copy, in the worker thread: the user's layer is never changed
            funcs = preprocessing_steps()
            for i, name in enumerate(self.preprocess):
                yield Progress(f"preprocessing: {name}", i, len(self.preprocess))
                data = funcs[name](data)
        return (yield from iter_extract(data, method=self.method, positions=self.positions,
                                        pixel_size=self.pixel_size,
                                        kernel_size=self.kernel_size, device=self.device))


def _resolve(viewer: napari.Viewer | None, layer, what: str):
    if isinstance(layer, str):
        if viewer is None or layer not in viewer.layers:
            raise ValueError(f"{what}: there is no layer named {layer!r} in the viewer")
        return viewer.layers[layer]
    return layer


def observation_of(layer: Layer) -> np.ndarray:
    """The layer's data as a float array, or ValueError saying why it cannot be used."""
    from napari.layers import Image

    if not isinstance(layer, Image):
        kind = type(layer).__name__
        raise ValueError(f"layer {layer.name!r} is a {kind} layer; choose an Image layer "
                         "holding dI/dV data")
    if layer.multiscale:
        raise ValueError(f"layer {layer.name!r} is multiscale; open it as a single-scale "
                         "image")
    if layer.rgb:
        raise ValueError(f"layer {layer.name!r} is an RGB image, not dI/dV data")
    if layer.ndim not in (2, 3):
        raise ValueError(f"layer {layer.name!r} holds {layer.ndim}-D data of shape "
                         f"{tuple(layer.data.shape)}; choose a (Y, X) map or an (E, Y, X) "
                         "stack")
    return np.asarray(layer.data, dtype=float)


def pixel_size_of(layer: Layer) -> float | None:
    """Å per pixel: the layer's metadata, else its x scale when its units are lengths."""
    if "pixel_size" in layer.metadata:
        return float(layer.metadata["pixel_size"])
    unit = layer.units[-1]
    if str(unit) in _ANGSTROM:
        return float(layer.scale[-1])
    try:
        return float((layer.scale[-1] * unit).to("angstrom").magnitude)
    except Exception:  # pixel or dimensionless units: no physical size
        return None


def points_to_pixels(points: Layer, image: Layer) -> np.ndarray:
    """(N, 2) (row, col) pixels of ``image`` under each point of ``points``.

    Goes through world coordinates with the layers' own transforms, so points drawn
    in Å on top of the image land on the right pixels whatever the two scales are.
    Missing leading world axes (2-D points on an energy stack) take the image's
    first slice.
    """
    from napari.layers import Points

    if not isinstance(points, Points):
        raise ValueError(f"positions: layer {points.name!r} is a {type(points).__name__} "
                         "layer; choose a Points layer")
    data = np.asarray(points.data, dtype=float)
    if len(data) == 0:
        raise ValueError(f"positions: Points layer {points.name!r} is empty; add the "
                         "scatterers or choose no Points layer")
    origin = np.asarray(image.data_to_world(np.zeros(image.ndim)), dtype=float)
    out = np.empty((len(data), 2))
    for i, p in enumerate(data):
        world = np.asarray(points.data_to_world(p), dtype=float)
        if world.size < image.ndim:
            world = np.concatenate([origin[: image.ndim - world.size], world])
        out[i] = np.asarray(image.world_to_data(world[-image.ndim:]), dtype=float)[-2:]
    return out


def preprocessing_steps() -> dict:
    """Preprocessing offered before extraction: name → function of the library."""
    from ..io import preprocess as pp

    return {
        "set-point normalisation": pp.normalize_slices,
        "subtract plane": pp.subtract_plane,
        "flatten lines": pp.flatten_lines,
        "suppress streaks": pp.suppress_streaks,
        "remove Bragg peaks": pp.remove_bragg_peaks,
    }


def prepare(layer: Layer, *, method: str | None = None, points: Layer | None = None,
            kernel_size: int | None = None, device: str | None = None,
            pixel_size: float | None = None, viewer: napari.Viewer | None = None,
            preprocess=()) -> Request:
    """Validate layers and options into a :class:`Request`.

    Raises
    ------
    ValueError
        With a message meant for the user: wrong layer type or dimensions, unknown
        method, a method that needs positions without a Points layer, points outside
        the image, a kernel window larger than the image.
    """
    from ..extraction.extract import validate

    layer = _resolve(viewer, layer, "layer")
    points = _resolve(viewer, points, "points") if points is not None else None
    method = default_method() if method is None else method
    if method not in methods():
        raise ValueError(f"method {method!r} is unknown; choose one of "
                         f"{', '.join(methods())}")
    observation = observation_of(layer)
    positions = points_to_pixels(points, layer) if points is not None else None
    if positions is None and method == "wiener":
        raise ValueError("method 'wiener' needs the scatterer positions: choose a Points "
                         "layer marking them")
    if pixel_size is None:
        pixel_size = pixel_size_of(layer)
    from ..extraction.extract import DEFAULT_KERNEL_SIZE

    k = DEFAULT_KERNEL_SIZE if kernel_size is None else int(kernel_size)
    validate(observation, positions, k, method)  # the library's own checks, early
    unknown = set(preprocess) - set(preprocessing_steps())
    if unknown:
        raise ValueError(f"preprocessing {sorted(unknown)} is unknown; choose from "
                         f"{', '.join(preprocessing_steps())}")
    return Request(layer, observation, positions, method, k, device, pixel_size,
                   tuple(preprocess))


def scores(layer: Layer, extraction: Extraction) -> dict:
    """Similarity of the extracted kernel to ``layer.metadata["ground_truth"]``.

    Returns ``{}`` when the layer has no ground truth, the metrics module is missing,
    or the kernels cannot be compared (other energies); else the mean over energies of
    :func:`~napari_qpi.metrics.kernel_similarity` and
    :func:`~napari_qpi.metrics.tail_similarity`.
    """
    truth = layer.metadata.get("ground_truth")
    if not truth or "kernel" not in truth:
        return {}
    try:
        from ..metrics import kernel_similarity, tail_similarity
    except ImportError:
        return {}
    true_k = np.asarray(truth["kernel"], dtype=float)
    est = np.asarray(extraction.kernel, dtype=float)
    if est.ndim == 2 and true_k.ndim == 3 and len(true_k) == 1:
        true_k = true_k[0]
    if true_k.shape[:-2] != est.shape[:-2]:
        return {}
    k = min(true_k.shape[-1], est.shape[-1])
    true_k, est = _crop(true_k, k), _crop(est, k)
    try:
        return {"kernel_similarity": float(np.mean(kernel_similarity(true_k, est))),
                "tail_similarity": float(np.mean(tail_similarity(true_k, est)))}
    except (TypeError, ValueError):  # metrics with another signature: show no score
        return {}


def _crop(kernel: np.ndarray, k: int) -> np.ndarray:
    c, h = kernel.shape[-1] // 2, k // 2
    return kernel[..., c - h:c + h + 1, c - h:c + h + 1]


def show_result(viewer: napari.Viewer, request: Request, extraction: Extraction) -> dict:
    """Add or update the result layers of ``extraction`` in ``viewer``; return the scores.

    The layer selection is left as it was, so a second run starts from the same input.
    """
    found = scores(request.source, extraction)
    selected, active = set(viewer.layers.selection), viewer.layers.selection.active
    apply_layers(viewer, result_layers(extraction, request.source, scores=found))
    viewer.layers.selection.clear()
    viewer.layers.selection.update(selected)
    viewer.layers.selection.active = active
    return found


def extract_layer(viewer: napari.Viewer, layer, method: str | None = None,
                  points=None, **kwargs) -> Extraction:
    """Extract the kernel of an Image layer and show the results, synchronously.

    Does what the extraction widget does, in the calling thread: handy from napari's
    console or a script.

    Parameters
    ----------
    viewer : napari.Viewer
    layer : napari.layers.Image or str
        The observation: a (Y, X) map or an (E, Y, X) stack (or its layer name).
    method : str, optional
        A registered method (see :data:`napari_qpi.extraction.METHODS`); default
        ``"two-stage"`` when available.
    points : napari.layers.Points or str, optional
        Scatterer positions, for guided mode (needed by ``"wiener"``).
    **kwargs
        ``kernel_size``, ``device``, ``pixel_size``, as for :func:`napari_qpi.extract`;
        ``preprocess``: names from :func:`preprocessing_steps`, applied in order to a
        copy of the data.

    Returns
    -------
    Extraction
        The library's result; the layers ``"<layer> kernel"``, ``"… residual"``,
        ``"… activation"``, ``"… kernel |FFT|"`` (and ``"… uncertainty"``) are added
        or updated in ``viewer``.

    Raises
    ------
    ValueError
        For an unusable layer or options (see :func:`prepare`).

    Examples
    --------
    >>> from napari_qpi.napari import extract_layer
    >>> res = extract_layer(viewer, "QPI observation", method="wiener",
    ...                     points="scatterers")  # doctest: +SKIP
    >>> viewer.layers["QPI observation kernel"].data.shape  # doctest: +SKIP
    (8, 65, 65)
    """
    request = prepare(layer, method=method, points=points, viewer=viewer, **kwargs)
    from .._generators import drain

    extraction = drain(request.steps())
    show_result(viewer, request, extraction)
    return extraction
