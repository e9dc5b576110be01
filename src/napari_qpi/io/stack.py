"""``QPIStack``: an energy-resolved stack of dI/dV maps with its physical axes."""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._common import MAX_VALUES
from .errors import QPIFormatError


@dataclass
class QPIStack:
    """Energy-resolved dI/dV maps.

    Parameters
    ----------
    data : (E, Y, X) array_like
        Maps, stored as float32; a 2-D map becomes a one-energy stack.
    energies : (E,) array_like, optional
        Energies in meV (bias × e); default 0, 1, 2, … .
    pixel_size : float
        Å per pixel.
    metadata : dict
        Anything else (header fields, simulation truth); must be JSON-serialisable
        to survive :meth:`save`.
    """

    data: np.ndarray
    energies: np.ndarray | None = None
    pixel_size: float = 1.0
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ValueError(f"data must be (E, Y, X) or (Y, X), got shape {data.shape}")
        if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
            raise ValueError(f"data must be real numbers, got dtype {data.dtype}")
        self.data = data.astype(np.float32, copy=False)
        if self.energies is None:
            self.energies = np.arange(data.shape[0], dtype=float)
        self.energies = np.atleast_1d(np.asarray(self.energies, dtype=float))
        if self.energies.shape != (data.shape[0],):
            raise ValueError(
                f"energies has {self.energies.size} values for {data.shape[0]} slices")
        self.pixel_size = float(self.pixel_size)
        if not np.isfinite(self.pixel_size) or self.pixel_size <= 0:
            raise ValueError(f"pixel_size must be positive (Å), got {self.pixel_size}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(E, Y, X)."""
        return self.data.shape  # type: ignore[return-value]

    def save(self, path: str | Path) -> Path:
        """Write to ``.npz`` (data, energies, pixel_size, metadata as JSON)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        np.savez_compressed(
            path, data=self.data, energies=self.energies,
            pixel_size=np.float64(self.pixel_size),
            metadata=np.array(json.dumps(self.metadata, default=_jsonable)),
        )
        return path


def _jsonable(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _load_npz(path: Path) -> QPIStack:
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.filename.endswith(".npy"):
                    with z.open(info) as member:
                        _check_npy_header(path, member, info.file_size)
        with np.load(path, allow_pickle=False) as f:
            if "data" not in f:
                raise QPIFormatError(path, f"no 'data' array inside (found {list(f.keys())})")
            data = f["data"]
            energies = f["energies"] if "energies" in f else None
            pixel_size = float(f["pixel_size"]) if "pixel_size" in f else 1.0
            meta = json.loads(str(f["metadata"])) if "metadata" in f else {}
    except QPIFormatError:
        raise
    except (OSError, ValueError, TypeError, zipfile.BadZipFile, EOFError, KeyError,
            RuntimeError, NotImplementedError, SyntaxError, zlib.error) as exc:
        raise QPIFormatError(path, f"not a readable .npz file ({exc})") from None
    if not isinstance(meta, dict):
        raise QPIFormatError(path, f"metadata is a JSON {type(meta).__name__}, not an object")
    return _checked(path, data, energies, pixel_size, meta)


def _load_npy(path: Path) -> QPIStack:
    try:
        with open(path, "rb") as fh:
            _check_npy_header(path, fh, path.stat().st_size)
        data = np.load(path, allow_pickle=False)
    except QPIFormatError:
        raise
    except (OSError, ValueError, TypeError, EOFError, SyntaxError) as exc:
        raise QPIFormatError(path, f"not a readable .npy file ({exc})") from None
    return _checked(path, data, None, 1.0, {})


def _check_npy_header(path: Path, fh, size: int) -> None:
    """Refuse an ``.npy`` header whose shape needs more bytes than the file holds."""
    version = np.lib.format.read_magic(fh)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise QPIFormatError(path, f"unknown .npy format version {version}")
    reader = getattr(np.lib.format, f"read_array_header_{version[0]}_0", None)
    if reader is None:  # version 3.0 headers read like 2.0 ones
        reader = np.lib.format.read_array_header_2_0
    try:
        shape, _, dtype = reader(fh)
    except Exception as exc:  # numpy's header parser lets tokenize/SyntaxError escape
        raise QPIFormatError(path, f"damaged .npy array header ({exc!r})") from None
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count > MAX_VALUES or count * dtype.itemsize > size:
        raise QPIFormatError(path, f"array header asks for shape {shape} of {dtype}, "
                                   f"more than the file holds ({size} bytes)")


def _load_tif(path: Path) -> QPIStack:
    import tifffile

    try:
        data = tifffile.imread(path)
    except Exception as exc:  # tifffile raises many types for damaged files
        raise QPIFormatError(path, f"not a readable TIFF file ({exc})") from None
    return _checked(path, data, None, 1.0, {})


def _checked(path, data, energies, pixel_size, meta) -> QPIStack:
    data = np.asarray(data)
    if data.ndim not in (2, 3):
        raise QPIFormatError(
            path, f"holds an array of shape {data.shape}; need (E, Y, X) or (Y, X)")
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise QPIFormatError(path, f"holds {data.dtype} data; need real numbers")
    if data.size == 0 or not np.isfinite(data).any():
        raise QPIFormatError(path, "holds no finite values")
    try:
        return QPIStack(data, energies, pixel_size, meta)
    except ValueError as exc:
        raise QPIFormatError(path, str(exc)) from None


#: Readers by file suffix; the formats issue adds instrument formats here.
READERS = {".npz": _load_npz, ".npy": _load_npy, ".tif": _load_tif, ".tiff": _load_tif}


def load_stack(path: str | Path | Sequence[str | Path],
               channel: str | None = None) -> QPIStack:
    """Read a QPI stack from a file.

    Parameters
    ----------
    path : str or Path, or a sequence of them
        ``.npz`` written by :meth:`QPIStack.save`, a plain ``.npy``/``.tif`` stack, a
        Nanonis ``.3ds`` grid or ``.sxm`` image; a list of ``.sxm`` images of one frame
        at several biases becomes one energy stack.
    channel : str, optional
        Channel to read, for multi-channel instrument formats (name or unique
        case-insensitive substring); default the lock-in dI/dV channel.

    Returns
    -------
    QPIStack

    Raises
    ------
    QPIFormatError
        The file is missing, of an unknown type, or damaged.
    """
    if isinstance(path, (list, tuple)):
        if len(path) == 1:
            return load_stack(path[0], channel)
        bad = [p for p in path if Path(p).suffix.lower() != ".sxm"]
        if bad or not path:
            raise QPIFormatError(bad[0] if bad else "<no files>",
                                 "only .sxm images combine into one stack from a list")
        from .sxm import load_sxm_series

        return load_sxm_series(path, channel)
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise QPIFormatError(path, f"unknown file type {path.suffix!r}; "
                                   f"readable: {', '.join(sorted(READERS))}")
    if not path.is_file():
        raise QPIFormatError(path, "no such file")
    if channel is not None and reader in (_load_npz, _load_npy, _load_tif):
        raise QPIFormatError(path, f"channel={channel!r} given, but this format has one channel")
    return reader(path) if channel is None else reader(path, channel=channel)
