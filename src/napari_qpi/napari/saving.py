"""All outputs of one extraction in one ``.npz`` (or TIFF stacks), loadable without napari.

The ``.npz`` holds the arrays (``kernel``, ``activation``, ``residual`` and, when the method
gave them, ``uncertainty`` and ``latent``), the ``energies`` (meV) and ``pixel_size``
(Å), and three JSON strings: ``info`` (the library's diagnostics and quality scores),
``parameters`` (method, kernel size, preprocessing, source layer) and ``scores`` (against
a ground truth, when there was one), with the ``method`` and the package ``version``.
:func:`save_tiffs` writes the same arrays as ImageJ hyperstacks with their axes (energy
step, Å per pixel) for Fiji, Gwyddion or Python.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..extraction.extract import Extraction

#: The arrays of a run file, and the JSON fields.
ARRAYS = ("kernel", "activation", "residual", "uncertainty", "latent")
JSON_FIELDS = ("info", "parameters", "scores")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def save_run(path: str | Path, extraction: Extraction, *, parameters: dict | None = None,
             scores: dict | None = None, energies=None,
             pixel_size: float | None = None) -> Path:
    """Write every output of ``extraction`` to one ``.npz`` (suffix added if missing).

    Parameters
    ----------
    path : str or Path
    extraction : Extraction
    parameters : dict, optional
        The options of the run (method, kernel size, preprocessing, source).
    scores : dict, optional
        Scores against a ground truth.
    energies : (E,) array_like, optional
        Energies of the kernel slices, meV.
    pixel_size : float, optional
        Å per pixel (default: ``extraction.info["pixel_size"]``).

    Returns
    -------
    Path
        The file written.
    """
    from .. import __version__

    path = Path(path)
    if path.suffix.lower() != ".npz":
        path = path.with_name(path.name + ".npz")
    if pixel_size is None:
        pixel_size = extraction.info.get("pixel_size")
    arrays = {name: np.asarray(getattr(extraction, name)) for name in ARRAYS
              if getattr(extraction, name) is not None}
    if energies is not None:
        arrays["energies"] = np.asarray(energies, dtype=float)
    meta = {"info": dict(extraction.info), "parameters": dict(parameters or {}),
            "scores": dict(scores or {})}
    np.savez_compressed(
        path, **arrays, method=np.array(extraction.method),
        version=np.array(__version__),
        pixel_size=np.array(np.nan if pixel_size is None else float(pixel_size)),
        **{key: np.array(json.dumps(_jsonable(value))) for key, value in meta.items()})
    return path


def load_run(path: str | Path) -> dict:
    """Read a file of :func:`save_run` back.

    Returns
    -------
    dict
        The arrays by name (absent ones are None), ``energies`` (or None),
        ``pixel_size`` (float or None), ``method``, ``version`` and the decoded
        ``info``, ``parameters`` and ``scores`` dicts.

    Raises
    ------
    ValueError
        When the file is not a run file of napari-qpi.
    """
    with np.load(Path(path), allow_pickle=False) as f:
        if "kernel" not in f or "info" not in f:
            raise ValueError(f"{Path(path).name} is not a napari-qpi run file (no kernel "
                             "and info); save one with the widget's Save button")
        out: dict = {name: f[name] if name in f else None for name in (*ARRAYS, "energies")}
        for key in JSON_FIELDS:
            out[key] = json.loads(str(f[key])) if key in f else {}
        out["method"] = str(f["method"])
        out["version"] = str(f["version"]) if "version" in f else ""
        px = float(f["pixel_size"]) if "pixel_size" in f else float("nan")
        out["pixel_size"] = None if np.isnan(px) else px
    return out


def is_run_file(path: str | Path) -> bool:
    """Whether ``path`` is a ``.npz`` written by :func:`save_run` (cheap: reads names)."""
    try:
        with np.load(Path(path), allow_pickle=False) as f:
            return {"kernel", "info", "method"} <= set(f.files)
    except Exception:  # not an npz, unreadable: not ours
        return False


def save_tiffs(path: str | Path, extraction: Extraction, *, energies=None,
               pixel_size: float | None = None, parameters: dict | None = None
               ) -> list[Path]:
    """Write each output of ``extraction`` as an ImageJ TIFF stack with axis metadata.

    ``<stem> kernel.tif``, ``<stem> residual.tif``, ``<stem> activation.tif`` and
    ``<stem> uncertainty.tif`` (when present) next to ``path``: float32, axes ``ZYX``
    (``YX`` for a map) with the energy step as the Z spacing (``zunit`` meV), Å per pixel
    as the resolution (unit ``angstrom``), one ``E = … meV`` label per slice, and the method,
    parameters and quality info as JSON in the ``Info`` field.

    Returns
    -------
    list of Path
        The files written.
    """
    import tifffile

    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() in (".tif", ".tiff") else path
    if pixel_size is None:
        pixel_size = extraction.info.get("pixel_size")
    info = json.dumps(_jsonable({"method": extraction.method, "info": extraction.info,
                                 "parameters": parameters or {}}))
    written = []
    for name in ("kernel", "residual", "activation", "uncertainty"):
        data = getattr(extraction, name)
        if data is None:
            continue
        data = np.asarray(data, dtype=np.float32)
        meta = {"axes": "ZYX" if data.ndim == 3 else "YX", "Info": info}
        if pixel_size:
            meta["unit"] = "angstrom"
        if data.ndim == 3 and energies is not None and len(energies) == len(data):
            e = np.asarray(energies, dtype=float)
            meta["spacing"] = float(np.mean(np.diff(e))) if len(e) > 1 else 1.0
            meta["zunit"] = "meV"  # ImageJ's own key; without it Z reads as `unit` (Å)
            meta["Labels"] = [f"E = {v:.4g} meV" for v in e]
        out = stem.with_name(f"{stem.name} {name}.tif")
        res = (1 / pixel_size, 1 / pixel_size) if pixel_size else None
        tifffile.imwrite(out, data, imagej=True, resolution=res, metadata=meta)
        written.append(out)
    return written
