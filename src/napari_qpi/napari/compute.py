"""Extraction on napari layers: validation and computation, no layer building.

:func:`prepare` turns layers into a validated :class:`Request`, :meth:`Request.steps`
is the library's :func:`~napari_qpi.extraction.extract.iter_extract` generator, and
:func:`extract_layer` runs it synchronously and shows the result (the widget does the
same in a worker thread). Layers are built in :mod:`.layers` and :mod:`.results`.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

    from ..extraction.extract import Extraction
    from ..progress import Progress

#: Units that mean Å for a layer's y/x axes.
_ANGSTROM = {"angstrom", "Å", "ångström", "Angstrom"}


def registry() -> dict:
    """The library's method registry (name → :class:`~napari_qpi.extraction.registry.Method`)."""
    from ..extraction.registry import METHODS

    return METHODS


def methods() -> list[str]:
    """Extraction methods registered right now (read at call time)."""
    return list(registry())


def default_method() -> str:
    """``"auto"`` when registered, else the first registered method."""
    names = methods()
    return "auto" if "auto" in names else names[0]


def method_help(name: str) -> str:
    """The registry's one-line help of a method ("" for an unknown one)."""
    method = registry().get(name)
    return method.help() if method is not None else ""


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
    kernel_size : int or None
        None: the window :func:`~napari_qpi.extract` chooses from the data.
    device, pixel_size :
        Passed on to :func:`~napari_qpi.extraction.extract.iter_extract`.
    preprocess : tuple of str
        Names from :func:`preprocessing_steps`, applied in order to a copy of the data;
        none chosen: :func:`~napari_qpi.extract`'s automatic, safe steps.
    n_types : int or "auto"
        Defect species.
    first_look : bool
        With ``"auto"`` (one species): the two-stage network's result first, in about a
        second, handed out as a progress event (``info["first_look"]``) while ``auto``
        refines it; the refined result reports what it gained
        (``info["refinement_gain"]``).
    one_view : bool
        With ``"auto"`` or ``"refine"``: the latent fit from the map or stack as it is,
        not from its four quarter turns (:data:`~napari_qpi.extraction.config.ONE_VIEW`):
        about half the time on a stack, less sure.
    """

    source: Layer
    observation: np.ndarray
    positions: np.ndarray | None
    method: str
    kernel_size: int | None
    device: str | None
    pixel_size: float | None
    preprocess: tuple[str, ...] = ()
    n_types: int | str = 1
    first_look: bool = False
    one_view: bool = False

    def parameters(self) -> dict:
        """The options of this run as plain values (saved next to its outputs)."""
        return {"method": self.method, "kernel_size": self.kernel_size,
                "device": self.device, "pixel_size": self.pixel_size,
                "preprocess": list(self.preprocess), "source": self.source.name,
                "guided": self.positions is not None, "n_types": self.n_types,
                "one_view": self.one_view}

    def steps(self) -> Generator[Progress, None, Extraction]:
        """The extraction as a generator of progress events returning the result.

        After preprocessing, one event carries the preprocessed data in
        ``info["observation"]``.
        """
        from ..extraction.config import ONE_VIEW
        from ..extraction.extract import iter_extract
        from ..io.pipeline import preprocess
        from ..progress import Progress

        data = self.observation
        # the user's steps replace the automatic ones (extract's preprocess="auto")
        auto = "auto" if not self.preprocess else None
        applied: list[dict] = []
        if self.preprocess:
            # on a copy, in the worker thread: the user's layer is never changed
            steps = preprocessing_steps()
            n = len(self.preprocess)
            for i, name in enumerate(self.preprocess):
                yield Progress(f"preprocessing: {name}", i, n)
                data, done = preprocess(data, [steps[name]])
                applied += done
            # the data actually fitted: the residual is shown on its colour scale
            yield Progress("preprocessed", n, n, {"observation": data})
        first_look = self.first_look and self.method == "auto" and self.n_types == 1
        if first_look and auto and np.isfinite(data).all():
            # the automatic steps once for the first look and the refinement both (on a
            # large grid they take seconds); what extract(preprocess="auto") applies
            yield Progress("preprocessing", 0, 1)
            data, applied = preprocess(data, "auto")
            auto = None
            yield Progress("preprocessed", 1, 1, {"observation": data})
        options = dict(positions=self.positions, pixel_size=self.pixel_size,
                       kernel_size=self.kernel_size, device=self.device, preprocess=auto)
        if first_look:
            # a busy laptop: the network's kernel within seconds, then the refinement
            first = yield from iter_extract(data, method="two-stage", **options)
            if applied:
                first.info["preprocess"] = applied
            yield Progress("first look (two-stage) shown; auto refines it", 1, 1,
                           {"first_look": first})
        result = yield from iter_extract(data, method=self.method, n_types=self.n_types,
                                         config=ONE_VIEW if self.one_view else None,
                                         **options)
        if applied:  # recorded like extract's own steps, so the run can be replayed
            result.info["preprocess"] = applied
        return result


def _resolve(viewer: napari.Viewer | None, layer, what: str):
    if isinstance(layer, str):
        if viewer is None or layer not in viewer.layers:
            raise ValueError(f"{what}: there is no layer named {layer!r} in the viewer")
        return viewer.layers[layer]
    return layer


def observation_of(layer: Layer) -> np.ndarray:
    """The layer's data as a float array, or ValueError saying why it cannot be used."""
    from napari.layers import Image

    from .layers import role_of

    if not isinstance(layer, Image):
        kind = type(layer).__name__
        raise ValueError(f"layer {layer.name!r} is a {kind} layer; choose an Image layer "
                         "holding dI/dV data")
    if role_of(layer) in ("result", "truth"):
        raise ValueError(f"layer {layer.name!r} is a {role_of(layer)} layer, not an "
                         "observation; choose the dI/dV map")
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
    """Å per pixel: the layer's metadata, else its x scale when its units are lengths.

    None (unknown) for a layer in pixels, so the library does not take 1 px for 1 Å.
    """
    if layer.metadata.get("pixel_size") is not None:
        return float(layer.metadata["pixel_size"])
    unit = layer.units[-1]
    if str(unit) in _ANGSTROM:
        return float(layer.scale[-1])
    try:
        return float((layer.scale[-1] * unit).to("angstrom").magnitude)
    except Exception:  # pixel or dimensionless units: no physical size
        return None


def energies_of(layer: Layer) -> np.ndarray | None:
    """The exact energies (meV) of an (E, Y, X) layer, from metadata or its E axis.

    A (Y, X) map has none, unless its metadata holds its one energy (a one-energy file
    opened as a map).
    """
    if layer.ndim == 2 and len(layer.metadata.get("energies", ())) == 1:
        return np.asarray(layer.metadata["energies"], dtype=float)
    if layer.ndim != 3:
        return None
    if "energies" in layer.metadata and len(layer.metadata["energies"]) == layer.data.shape[0]:
        return np.asarray(layer.metadata["energies"], dtype=float)
    return layer.translate[0] + layer.scale[0] * np.arange(layer.data.shape[0])


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
    """Preprocessing offered before extraction: label shown → step name of
    :func:`napari_qpi.io.pipeline.preprocess`."""
    return {
        "set-point normalisation": "normalize",
        "subtract background": "background",
        "subtract plane": "plane",
        "flatten lines": "lines",
        "suppress streaks": "streaks",
        "correct drift (Lawler–Fujita)": "drift",
        "remove Bragg peaks": "bragg",
    }


def prepare(layer: Layer, *, method: str | None = None, points: Layer | None = None,
            kernel_size: int | None = None, device: str | None = None,
            pixel_size: float | None = None, viewer: napari.Viewer | None = None,
            preprocess=(), n_types: int | str = 1, first_look: bool = False,
            one_view: bool = False) -> Request:
    """Validate layers and options into a :class:`Request`.

    Capabilities come from the method registry: a method that needs positions gets a
    clear message without a Points layer; a blind-only method ignores one.

    Raises
    ------
    ValueError
        With a message meant for the user: wrong layer type or dimensions, unknown
        method, a method that needs positions without a Points layer, points outside
        the image, a kernel window larger than the image or than the method allows.
    """
    from ..extraction.validate import check_kernel_size, validate

    layer = _resolve(viewer, layer, "layer")
    points = _resolve(viewer, points, "points") if points is not None else None
    method = default_method() if method is None else method
    info = registry().get(method)
    if info is None:
        raise ValueError(f"method {method!r} is unknown; choose one of "
                         f"{', '.join(methods())}")
    observation = observation_of(layer)
    positions = points_to_pixels(points, layer) if points is not None else None
    if positions is None and info.needs_positions:
        raise ValueError(f"method {method!r} needs the scatterer positions: choose a "
                         "Points layer marking them")
    from ..extraction.species import check_types

    n_types = check_types(n_types)
    if not info.accepts_positions or n_types != 1:
        # a blind-only method, or several species (each species' scatterers are found
        # from the map): the Points layer plays no part
        positions = None
    if pixel_size is None:
        pixel_size = pixel_size_of(layer)
    k = check_kernel_size(kernel_size, observation.shape[-2:])
    if k is not None and info.max_kernel_size is not None and k > info.max_kernel_size:
        raise ValueError(f"method {method!r} returns kernels up to {info.max_kernel_size} "
                         f"px; choose a smaller kernel size or 'auto'")
    validate(observation, positions, k)  # the library's own checks, early
    unknown = set(preprocess) - set(preprocessing_steps())
    if unknown:
        raise ValueError(f"preprocessing {sorted(unknown)} is unknown; choose from "
                         f"{', '.join(preprocessing_steps())}")
    return Request(layer, observation, positions, method, k, device, pixel_size,
                   tuple(preprocess), n_types, bool(first_look), bool(one_view))


def scores(layer: Layer, extraction: Extraction) -> dict:
    """Scores of the extracted kernel against ``layer.metadata["ground_truth"]``.

    Returns ``{}`` when the layer has no ground truth or the kernels cannot be compared
    (other energies); else :func:`napari_qpi.evaluation.score` averaged over energies.
    """
    truth = layer.metadata.get("ground_truth")
    if not truth or "kernel" not in truth or extraction.info.get("n_types", 1) > 1:
        return {}
    from ..evaluation import score

    try:
        return score(truth["kernel"], extraction.kernel, reduce="mean")
    except ValueError:  # other energies than the truth: nothing to compare
        return {}


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
        A registered method (see :data:`napari_qpi.extraction.registry.METHODS`);
        default ``"auto"``.
    points : napari.layers.Points or str, optional
        Scatterer positions, for guided mode (needed by ``"wiener"``).
    **kwargs
        ``kernel_size`` (default None: chosen from the data), ``device``,
        ``pixel_size``, ``n_types`` (defect species: 1–4 or "auto"), as for
        :func:`napari_qpi.extract`; ``preprocess``: names from
        :func:`preprocessing_steps`, applied in order to a copy of the data.

    Returns
    -------
    Extraction
        The library's result; the layers ``"<layer> kernel"``, ``"… residual"``,
        ``"… activation"`` (and ``"… uncertainty"``) are added or updated in
        ``viewer``, ``"… kernel |FFT|"`` in its q-space canvas
        (:func:`.qspace.q_viewer`), and outputs this method did not produce removed.

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
    from ..progress import drain
    from .results import show_result

    request = prepare(layer, method=method, points=points, viewer=viewer, **kwargs)
    fitted: dict = {}
    extraction = drain(request.steps(), lambda event: fitted.update(event.info))
    show_result(viewer, request.source, extraction, scores=scores(request.source, extraction),
                reference=fitted.get("observation"))
    return extraction
