"""Plain array files → :class:`QPIStack`: ``.npz`` (from :meth:`QPIStack.save`), ``.npy``,
``.tif``.

Every ``.npy`` header (a file, or a member of an ``.npz`` zip) is read and checked —
version, dtype, shape, the bytes it declares against the caps and against what the file
or zip member holds — *before* any array is allocated, so a small compressed file cannot
expand into gigabytes and complex data is refused without being read.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._common import MAX_DATA_BYTES, MAX_VALUES, check_energies, check_pixel_size
from .errors import QPIFormatError
from .stack import QPIStack

__all__ = ["load_npy", "load_npz", "load_tif"]

#: Most energies an ``.npz`` may list; metadata JSON at most this many bytes.
MAX_ENERGIES = 2**16
MAX_METADATA_BYTES = 2**26
#: Deflate expands at most ~1032:1; a member claiming more is damaged.
MAX_DEFLATE_RATIO = 1040
#: Exceptions numpy, zipfile and zlib raise for damaged files.
_DAMAGED = (OSError, ValueError, TypeError, zipfile.BadZipFile, EOFError, KeyError,
            RuntimeError, NotImplementedError, SyntaxError, zlib.error, OverflowError)


def load_npz(path: Path) -> QPIStack:
    """Read an ``.npz`` written by :meth:`QPIStack.save` (``data``; optional ``energies``,
    ``pixel_size`` in Å, ``metadata`` JSON). Unsorted energies are sorted with their
    slices."""
    try:
        with zipfile.ZipFile(path) as z:
            members = {info.filename.removesuffix(".npy"): info for info in z.infolist()
                       if info.filename.endswith(".npy")}
            if "data" not in members:
                raise QPIFormatError(path, f"no 'data' array inside (found "
                                           f"{', '.join(sorted(members)) or 'none'})")
            heads = {k: _member_header(path, z, members[k]) for k in
                     ("data", "energies", "pixel_size", "metadata") if k in members}
            _check_members(path, heads)
            read = {k: _read_member(z, members[k]) for k in heads}
    except QPIFormatError:
        raise
    except _DAMAGED as exc:
        raise QPIFormatError(path, f"not a readable .npz file ({exc})") from None
    try:
        meta = json.loads(str(read["metadata"])) if "metadata" in read else {}
    except ValueError as exc:
        raise QPIFormatError(path, f"metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise QPIFormatError(path, f"metadata is a JSON {type(meta).__name__}, not an object")
    data, energies = read["data"], read.get("energies")
    if energies is not None:
        energies = np.atleast_1d(energies).astype(float)
        check_energies(path, energies)
        if data.ndim == 3 and np.any(np.diff(energies) < 0):
            order = np.argsort(energies, kind="stable")
            data, energies = data[order], energies[order]
    pixel_size = None
    if "pixel_size" in read:
        pixel_size = check_pixel_size(path, float(read["pixel_size"]), "pixel_size")
    return checked(path, data, energies, pixel_size, meta)


def _member_header(path: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo):
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise QPIFormatError(path, f"member {info.filename} uses zip compression method "
                                   f"{info.compress_type}; .npz files hold stored or deflated "
                                   "members (numpy.savez, numpy.savez_compressed)")
    # a size the compressed bytes cannot hold is a lie: refuse it before trusting it
    packed = info.compress_size
    if (info.compress_type == zipfile.ZIP_STORED and info.file_size != packed) or (
            info.compress_type == zipfile.ZIP_DEFLATED
            and info.file_size > MAX_DEFLATE_RATIO * packed + 1024):
        raise QPIFormatError(path, f"member {info.filename} declares {info.file_size} bytes "
                                   f"from {packed} compressed bytes; the zip is damaged")
    with z.open(info) as fh:
        return read_npy_header(path, fh, info.file_size, info.filename)


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    # numpy reads a zip member in 256 KiB chunks into the array it allocates once
    with z.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _check_members(path: Path, heads: dict) -> None:
    """Shapes and dtypes of the ``.npz`` members, checked against each other."""
    shape, dtype = heads["data"]
    _check_data_dtype(path, dtype, "data")
    if len(shape) not in (2, 3):
        raise QPIFormatError(path, f"holds data of shape {shape}; need (E, Y, X) or (Y, X)")
    n_slices = shape[0] if len(shape) == 3 else 1
    for name in ("energies", "pixel_size"):
        if name not in heads:
            continue
        s, d = heads[name]
        if d.kind not in "biuf":
            raise QPIFormatError(path, f"{name} holds {d} values; need real numbers")
        count = int(np.prod(s, dtype=object))
        if name == "pixel_size" and count != 1:
            raise QPIFormatError(path, f"pixel_size holds {count} values; need one number (Å)")
        if name == "energies" and (len(s) > 1 or count != n_slices or count > MAX_ENERGIES):
            raise QPIFormatError(path, f"energies has shape {s} for {n_slices} slices; need "
                                       "one energy (meV) per slice")
    if "metadata" in heads:
        s, d = heads["metadata"]
        if d.kind != "U" or s != () or d.itemsize > MAX_METADATA_BYTES:
            raise QPIFormatError(path, f"metadata is a {d} array of shape {s}; need one "
                                       "JSON string")


def _check_data_dtype(path: Path, dtype: np.dtype, name: str) -> None:
    if dtype.kind == "c":
        raise QPIFormatError(path, f"{name} is complex ({dtype}); save a real map, e.g. "
                                   "data.real (in-phase lock-in) or np.abs(data)")
    if dtype.kind not in "biuf":
        raise QPIFormatError(path, f"{name} holds {dtype} values; need real numbers")


def read_npy_header(path: Path, fh, size: int, member: str | None = None):
    """Read and check one ``.npy`` header from ``fh``; return ``(shape, dtype)``.

    Refuses an unknown version, a damaged header, object (pickled) dtypes, and a shape
    that needs more than :data:`MAX_VALUES` values, :data:`MAX_DATA_BYTES` bytes, or
    more bytes than the ``size`` the file or zip member declares.
    """
    what = f"member {member}" if member else "file"
    try:
        version = np.lib.format.read_magic(fh)
    except _DAMAGED as exc:
        raise QPIFormatError(path, f"{what}: not an .npy array ({exc})") from None
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise QPIFormatError(path, f"{what}: unknown .npy format version {version}")
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
        np.lib.format.read_array_header_2_0  # 3.0 headers read like 2.0 ones
    try:
        shape, _, dtype = reader(fh)
    except Exception as exc:  # numpy's header parser lets tokenize/SyntaxError escape
        raise QPIFormatError(path, f"{what}: damaged .npy array header ({exc!r})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise QPIFormatError(path, f"{what}: holds {dtype} values (records or Python "
                                   "objects); need plain numbers")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    need = count * dtype.itemsize
    if count > MAX_VALUES or need > MAX_DATA_BYTES:
        raise QPIFormatError(path, f"{what}: .npy header asks for shape {shape} of {dtype} "
                                   f"({need} bytes), more than the {MAX_DATA_BYTES} bytes "
                                   "this reader accepts")
    if need > size:
        raise QPIFormatError(path, f"{what}: .npy header asks for shape {shape} of {dtype}, "
                                   f"more than the {what} holds ({size} bytes)")
    return tuple(int(n) for n in shape), dtype


def load_npy(path: Path) -> QPIStack:
    """Read a plain ``(E, Y, X)`` or ``(Y, X)`` ``.npy`` array (pixel size unknown)."""
    try:
        with open(path, "rb") as fh:
            shape, dtype = read_npy_header(path, fh, path.stat().st_size)
            _check_data_dtype(path, dtype, "array")
            fh.seek(0)
            data = np.lib.format.read_array(fh, allow_pickle=False)
    except QPIFormatError:
        raise
    except _DAMAGED as exc:
        raise QPIFormatError(path, f"not a readable .npy file ({exc})") from None
    return checked(path, data, None, None, {})


def load_tif(path: Path) -> QPIStack:
    """Read a greyscale ``.tif`` map or stack (pixel size unknown); RGB(A) is refused."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            samples = int(getattr(page, "samplesperpixel", 1))
            rgb = samples > 1 or "RGB" in str(getattr(page, "photometric", ""))
            shape = tuple(tif.series[0].shape) if tif.series else ()
            if not rgb:
                data = tif.asarray()
    except Exception as exc:  # tifffile raises many types for damaged files
        raise QPIFormatError(path, f"not a readable TIFF file ({exc})") from None
    if rgb:
        raise QPIFormatError(path, f"is a colour (RGB/RGBA, {samples} samples per pixel) "
                                   f"image of shape {shape}; a QPI map needs one value per "
                                   "pixel: save one channel, e.g. tifffile.imwrite('map.tif', "
                                   "rgb[..., 0]), or the raw dI/dV data")
    return checked(path, data, None, None, {})


def checked(path: Path, data, energies, pixel_size, meta) -> QPIStack:
    """A :class:`QPIStack` from arrays read out of ``path``, or QPIFormatError: the
    constructor's rules (:func:`~napari_qpi.io.stack.check_stack`), so what
    :meth:`QPIStack.save` writes reads back and what reads back could be saved."""
    try:
        return QPIStack(data, energies, pixel_size, meta)
    except ValueError as exc:
        raise QPIFormatError(path, str(exc)) from None
