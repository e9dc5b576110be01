"""``load_stack``: every reader, registered in one place by file suffix."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

from ._common import as_path
from .arrays import load_npy, load_npz, load_tif
from .errors import QPIFormatError
from .nanonis import load_3ds
from .stack import QPIStack
from .sxm import load_sxm, load_sxm_series

__all__ = ["READERS", "load_stack"]

#: Readers by file suffix (lower case). A reader takes a Path (and ``channel=`` when the
#: format has several) and returns a QPIStack or raises QPIFormatError.
READERS = {".npz": load_npz, ".npy": load_npy, ".tif": load_tif, ".tiff": load_tif,
           ".3ds": load_3ds, ".sxm": load_sxm}


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
        ``pixel_size`` is None where the file does not say (``.npy``, ``.tif``).

    Raises
    ------
    QPIFormatError
        The path is not a path, the file is missing, of an unknown type, or damaged.

    Examples
    --------
    >>> stack = load_stack("grid.3ds")  # doctest: +SKIP
    >>> stack.data.shape, stack.energies[:2], stack.pixel_size  # doctest: +SKIP
    """
    if isinstance(path, (list, tuple)):
        if len(path) == 1:
            return load_stack(path[0], channel)
        paths = [as_path(p) for p in path]
        bad = [p for p in paths if p.suffix.lower() != ".sxm"]
        if bad or not paths:
            raise QPIFormatError(bad[0] if bad else "<no files>",
                                 "only .sxm images combine into one stack from a list")
        return load_sxm_series(paths, channel)
    path = as_path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise QPIFormatError(path, f"unknown file type {path.suffix!r}; "
                                   f"readable: {', '.join(sorted(READERS))}")
    if not path.is_file():
        raise QPIFormatError(path, "no such file")
    if channel is not None and "channel" not in inspect.signature(reader).parameters:
        raise QPIFormatError(path, f"channel={channel!r} given, but this format has one channel")
    return reader(path) if channel is None else reader(path, channel=channel)

