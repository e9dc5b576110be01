"""``load_stack``: every reader, registered in one place by file suffix."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

from ._common import as_path, check_file, exists
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
        The path is not a path; the file is missing, a directory, not a regular file
        (a FIFO), a symbolic-link loop, too long a path, of an unknown type, or damaged.

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
        for p in paths:
            check_file(p)
        return load_sxm_series(paths, channel)
    path = as_path(path)
    reader = READERS.get(path.suffix.lower())
    unknown = f"unknown file type {path.suffix!r}; readable: {', '.join(sorted(READERS))}"
    if reader is None and not exists(path):
        raise QPIFormatError(path, unknown)
    check_file(path)  # a directory, FIFO, link loop or too long a path: each its message
    if reader is None:
        raise QPIFormatError(path, unknown)
    if channel is not None and "channel" not in inspect.signature(reader).parameters:
        raise QPIFormatError(path, f"channel={channel!r} given, but this format has one channel")
    return reader(path) if channel is None else reader(path, channel=channel)

