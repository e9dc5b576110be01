"""npe2 reader: QPI stacks as Image layers with physical axes.

Any suffix in :data:`napari_qpi.io.READERS` at call time is accepted, so formats the
library learns (Nanonis ``.3ds``/``.sxm``…) open without touching this module. A
``.npz`` saved by the extraction widget (:mod:`.saving`) opens as its result layers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .layers import (
    ROLE,
    LayerDataTuple,
    robust_limits,
    single_energy,
    slice_limits,
    stack_kwargs,
)

PathLike = str | Path


def _suffixes() -> set[str]:
    from .. import io

    return {s.lower() for s in io.READERS}


def get_reader(path: PathLike | list[PathLike]) -> Callable | None:
    """Return :func:`read_stack` for one file of a known QPI format (or several
    ``.sxm`` images of one frame, combined into an energy stack), else None.

    Parameters
    ----------
    path : str, Path or list of one of them

    Returns
    -------
    callable or None
    """
    if isinstance(path, list | tuple):
        if len(path) > 1:
            # several .sxm images of one frame at different biases: one energy stack
            sxm = all(Path(p).suffix.lower() == ".sxm" for p in path)
            return read_stack if sxm and ".sxm" in _suffixes() else None
        path = path[0]
    if Path(path).suffix.lower() not in _suffixes():
        return None
    from .saving import is_run_file

    return read_run if is_run_file(path) else read_stack


def read_run(path: PathLike | list[PathLike]) -> list[LayerDataTuple]:
    """The kernel, activation, residual and uncertainty of a saved extraction.

    Layers are named ``"<file> kernel"`` etc., in meV and Å as when they were made; the
    file's info, parameters and scores are in each layer's metadata. The kernel's
    |FFT| goes to the q-space canvas of the viewer opening the file (:mod:`.qspace`).
    """
    from .layers import ROLE, centred, symmetric_limits
    from .results import kernel_fft, q_geometry, residual_limits
    from .saving import load_run

    path = Path(path[0] if isinstance(path, list | tuple) else path)
    run = load_run(path)
    kernel = run["kernel"]
    energies = run["energies"] if run["energies"] is not None else [0.0]
    geom = stack_kwargs(energies, run["pixel_size"])
    kgeom = centred({k: v[-kernel.ndim:] for k, v in geom.items()}, kernel.shape[-1])
    meta = {ROLE: "result", "method": run["method"], "source": path.stem,
            "info": run["info"], "parameters": run["parameters"], "scores": run["scores"],
            "energies": list(map(float, energies))}
    name = path.stem
    out = []
    for key, data, kw in (
            ("residual", run["residual"], {**{k: v[-run["residual"].ndim:]
                                              for k, v in geom.items()},
                                           "colormap": "gray",
                                           "contrast_limits": residual_limits(
                                               run["residual"])}),
            ("activation", run["activation"], {**{k: v[-2:] for k, v in geom.items()},
                                               "colormap": "inferno"}),
            ("uncertainty", run["uncertainty"], {**kgeom, "colormap": "viridis"}),
            ("kernel |FFT|", kernel_fft(kernel), {
                **q_geometry(kgeom, kernel.shape[-1], run["pixel_size"]),
                "colormap": "magma"}),
            ("kernel", kernel, {**kgeom, "colormap": "RdBu_r",
                                "contrast_limits": symmetric_limits(kernel)})):
        if data is not None:
            data, kw = single_energy(data, kw)  # one energy: a map, shown at every E
            out.append((data, {**kw, "name": f"{name} {key}", "metadata": meta,
                               "visible": key == "kernel"}, "image"))
    return _q_space_aside(out)


def _q_space_aside(tuples: list[LayerDataTuple]) -> list[LayerDataTuple]:
    """Show q-space tuples in the q-space canvas of the viewer that opens the file
    (:mod:`.qspace`) and return the others; all of them without a viewer."""
    import napari

    from .qspace import show_q_layers
    from .results import is_q_space

    viewer = napari.current_viewer()
    q_tuples = [t for t in tuples if is_q_space(t[1])]
    if viewer is None or not q_tuples:
        return tuples
    show_q_layers(viewer, q_tuples)
    return [t for t in tuples if not is_q_space(t[1])]


def read_stack(path: PathLike | list[PathLike], channel: str | None = None
               ) -> list[LayerDataTuple]:
    """Read one file into an Image LayerDataTuple.

    Parameters
    ----------
    path : str, Path or list of them
    channel : str, optional
        Channel of a multi-channel file (Nanonis ``.3ds``/``.sxm``); default the
        reader's dI/dV channel. The extraction widget offers the file's channels.

    A file that is not a readable QPI stack (a user mistake, not a bug) gives an
    error notification naming the file and the problem, and no layer.

    Returns
    -------
    list of (data, kwargs, "image")
        scale = (energy step, Å/px, Å/px), units ("meV", "angstrom", "angstrom"),
        axis_labels ("E", "y", "x"), contrast limits between the 0.5 and 99.5
        percentiles (a few overloaded pixels do not blacken the map) and, in the viewer,
        per energy (``metadata["slice_limits"]``); metadata holds
        ``qpi_role = "observation"``, the exact ``energies`` (meV), ``pixel_size`` (Å),
        ``source`` and the file's own header fields. ``[(None,)]``
        (napari's "nothing to add") for a broken file.
    """
    from napari.utils.notifications import show_error

    from ..io import QPIFormatError, load_stack

    if isinstance(path, list | tuple):
        path = list(path) if len(path) > 1 else path[0]
    try:
        stack = load_stack(path, channel)
    except QPIFormatError as exc:
        show_error(f"Cannot open {Path(exc.path).name}: {exc.problem}")
        return [(None,)]
    data, kwargs = single_energy(stack.data, stack_kwargs(stack.energies, stack.pixel_size))
    first = Path(path[0] if isinstance(path, list) else path)
    many = isinstance(path, list)
    kwargs["name"] = f"{first.stem} (+{len(path) - 1})" if many else first.stem
    kwargs["metadata"] = {**stack.metadata, ROLE: "observation",
                          "energies": stack.energies.tolist(), "pixel_size": stack.pixel_size,
                          "source": [str(p) for p in path] if isinstance(path, list)
                          else str(path)}
    kwargs["colormap"] = "gray"
    kwargs["contrast_limits"] = robust_limits(data)
    kwargs["metadata"]["slice_limits"] = slice_limits(data)
    _follow_slices()
    return [(data, kwargs, "image")]


def _follow_slices() -> None:
    """Per-slice contrast and the energy readout in the viewer that opens the file."""
    import napari

    from .energy import install_energy_overlay

    viewer = napari.current_viewer()
    if viewer is not None:
        install_energy_overlay(viewer)


def channel_names(layer) -> list[str]:
    """Channels of the file behind ``layer``, when it has several (Nanonis .3ds/.sxm)."""
    if layer is None or "source" not in layer.metadata:
        return []
    names = [str(n) for n in layer.metadata.get("channels", [])]
    return names if len(names) > 1 else []


def reload_channel(layer, name: str) -> bool:
    """Read channel ``name`` of the layer's file into ``layer`` (data, metadata, contrast).

    Returns False (the reader has notified the user) when the file cannot give it.
    """
    if layer.metadata.get("channel") == name:
        return True
    read = read_stack(layer.metadata["source"], channel=name)[0]
    if read[0] is None:
        return False
    data, kwargs, _ = read
    layer.data = data
    layer.metadata = kwargs["metadata"]
    layer.contrast_limits_range = (float(data.min()), float(data.max()))
    layer.contrast_limits = kwargs["contrast_limits"]
    return True
