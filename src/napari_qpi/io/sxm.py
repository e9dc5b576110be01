"""Nanonis scan images (``.sxm``) → :class:`QPIStack`, singly or as a bias series.

A small parser of our own: nanonispy's ``.sxm`` reader breaks on numpy ≥ 1.24
(``np.float`` and friends were removed). Layout: an ASCII header of ``:KEY:`` lines, each
followed by its value lines, from ``:NANONIS_VERSION:`` to ``:SCANIT_END:``; then the
bytes ``\\x1a\\x04``; then float32 (``SCANIT_TYPE`` says the byte order, usually
``MSBFIRST``): for each ``DATA_INFO`` channel a forward image and, for direction
``both``, a backward image, each ``SCAN_PIXELS`` = ``nx ny`` values, x fastest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._common import (
    MAX_HEADER_BYTES,
    as_path,
    check_count,
    check_energies,
    check_pixel_size,
    default_lockin,
    finite_stack,
    match_channel,
    read_capped,
    to_float,
    to_floats,
    to_ints,
)
from .errors import QPIFormatError
from .stack import QPIStack

__all__ = ["load_sxm", "load_sxm_series"]

_END = b":SCANIT_END:"
_DATA = b"\x1a\x04"
_BWD = " [bwd]"


def load_sxm(path: str | Path, channel: str | None = None) -> QPIStack:
    """Read one Nanonis ``.sxm`` image as a one-energy stack.

    Parameters
    ----------
    path : str or Path
        ``.sxm`` file.
    channel : str, optional
        Channel name or unique case-insensitive substring (``_`` matches a space). The
        forward image is read; append ``" [bwd]"`` to the full name for the backward one.
        Default: the lock-in X channel.

    Returns
    -------
    QPIStack
        ``(1, Y, X)`` float32, row 0 the bottom of the frame (``SCAN_DIR`` down scans
        are flipped), backward images flipped left-right; energy = ``BIAS`` × 1000 meV.

    Raises
    ------
    QPIFormatError
        The file is empty, damaged, truncated, disagrees with its header, holds NaN,
        or the channel is unknown.
    """
    path = as_path(path)
    return parse_sxm(read_capped(path), path, channel)


def load_sxm_series(paths: Sequence[str | Path], channel: str | None = None) -> QPIStack:
    """Combine ``.sxm`` images of one frame at several biases into an energy stack.

    Parameters
    ----------
    paths : sequence of str or Path
        The images, in any order; they are sorted by bias.
    channel : str, optional
        As in :func:`load_sxm`, applied to every file.

    Returns
    -------
    QPIStack
        ``(E, Y, X)`` with energies ascending; ``metadata["files"]`` lists the sources.

    Raises
    ------
    QPIFormatError
        A file cannot be read, the frames differ (pixels, range, offset, angle), or two
        files share a bias.
    """
    if isinstance(paths, (str, Path)) or not hasattr(paths, "__iter__"):
        raise QPIFormatError(repr(paths)[:80], "load_sxm_series needs a list of .sxm files")
    paths = [as_path(p) for p in paths]
    if not paths:
        raise QPIFormatError("<no files>", "load_sxm_series needs at least one .sxm file")
    stacks = [load_sxm(p, channel) for p in paths]
    first = stacks[0].metadata
    for p, s in zip(paths[1:], stacks[1:]):
        problem = _frame_difference(first, s.metadata)
        if problem:
            raise QPIFormatError(p, f"{problem} from {paths[0].name}; not one frame")
    order = np.argsort([s.energies[0] for s in stacks], kind="stable")
    energies = np.array([stacks[i].energies[0] for i in order])
    if np.any(np.diff(energies) == 0):
        dup = energies[np.flatnonzero(np.diff(energies) == 0)[0]]
        raise QPIFormatError(paths[order[0]], f"two files share the bias {dup} meV")
    meta = {k: v for k, v in first.items() if k != "header"}
    meta.update(format="nanonis-sxm-series", source=[str(paths[i]) for i in order],
                files=[{"path": str(paths[i]), "bias_mV": float(energies[k]),
                        "header": stacks[i].metadata["header"]} for k, i in enumerate(order)])
    data = np.concatenate([stacks[i].data for i in order])
    return QPIStack(data, energies, stacks[0].pixel_size, meta)


def parse_sxm(raw: bytes, path: str | Path = "<bytes>", channel: str | None = None) -> QPIStack:
    """Parse the bytes of an ``.sxm`` file (see :func:`load_sxm`)."""
    header, offset = _header(raw, path)
    nx, ny = to_ints(path, _field(path, header, "SCAN_PIXELS"), "SCAN_PIXELS", 2)
    table = _data_info(path, _field(path, header, "DATA_INFO"))
    names = [name for name, _, _ in table]
    dtype = _dtype(path, header.get("SCANIT_TYPE", "FLOAT MSBFIRST"))
    n_images = sum(2 if both else 1 for _, _, both in table)
    check_count(path, nx * ny * n_images, "values")
    need = 4 * nx * ny * n_images
    if len(raw) - offset != need:
        raise QPIFormatError(path, f"holds {len(raw) - offset} data bytes; header "
                                   f"({nx} x {ny} px, {n_images} images) needs {need}")
    images = np.frombuffer(raw, dtype, count=nx * ny * n_images, offset=offset)
    images = images.reshape(n_images, ny, nx)

    selectable = names + [n + _BWD for n, _, both in table if both]
    if channel is None:
        chosen = default_lockin(names)
        if chosen is None:
            raise QPIFormatError(path, "no lock-in (dI/dV) channel; choose one with "
                                       f"channel=, from {', '.join(selectable)}")
    else:
        chosen = match_channel(path, selectable, channel)
    backward = chosen.endswith(_BWD)
    k = 0
    for name, _, both in table:
        if name == chosen.removesuffix(_BWD):
            break
        k += 2 if both else 1
    image = images[k + 1, :, ::-1] if backward else images[k]
    scan_dir = header.get("SCAN_DIR", "up").strip().lower()
    if scan_dir not in ("up", "down"):
        raise QPIFormatError(path, f"SCAN_DIR is {scan_dir!r}, not up or down")
    if scan_dir == "down":
        image = image[::-1]
    data = finite_stack(path, image[None], chosen)

    width, height = to_floats(path, _field(path, header, "SCAN_RANGE"), "SCAN_RANGE", 2)
    if width <= 0 or height <= 0:
        raise QPIFormatError(path, f"SCAN_RANGE gives a {width} × {height} m frame")
    offset_xy = to_floats(path, header.get("SCAN_OFFSET", "0 0"), "SCAN_OFFSET", 2)
    angle = to_float(path, header.get("SCAN_ANGLE", "0"), "SCAN_ANGLE")
    bias = to_float(path, _field(path, header, "BIAS"), "BIAS")
    check_energies(path, np.array([bias * 1000.0]), "BIAS")
    px = check_pixel_size(path, width / nx * 1e10, "SCAN_RANGE")
    py = check_pixel_size(path, height / ny * 1e10, "SCAN_RANGE")
    meta = {
        "format": "nanonis-sxm", "source": str(path), "channel": chosen,
        "channels": selectable, "unit": dict((n, u) for n, u, _ in table)[chosen.removesuffix(
            _BWD)], "derived": "backward scan" if backward else "forward scan",
        "bias_V": bias, "scan_dir": scan_dir, "frame_center_m": offset_xy,
        "frame_size_m": [width, height], "frame_angle_deg": angle,
        "pixel_size_x_A": px, "pixel_size_y_A": py,
        "scan_pixels": [nx, ny], "header": header,
    }
    return QPIStack(data, [bias * 1000.0], px, meta)


def _header(raw: bytes, path) -> tuple[dict, int]:
    if not raw:
        raise QPIFormatError(path, "file is empty")
    if not raw.startswith(b":NANONIS_VERSION:"):
        raise QPIFormatError(path, "does not start with ':NANONIS_VERSION:'; not an .sxm file")
    end = raw.find(_END, 0, MAX_HEADER_BYTES)
    if end < 0:
        raise QPIFormatError(path, "no ':SCANIT_END:' marker; header damaged or truncated")
    start = raw.find(_DATA, end, end + 4096)
    if start < 0:
        raise QPIFormatError(path, "no \\x1a\\x04 data marker after ':SCANIT_END:'")
    header: dict[str, str] = {}
    key = None
    for line in raw[:end].decode("latin-1").splitlines():
        m = re.fullmatch(r":(.+):\s*", line)
        if m:
            key = m.group(1)
            header[key] = ""
        elif key is not None:
            header[key] = f"{header[key]}\n{line}" if header[key] else line
    return {k: v.strip() for k, v in header.items()}, start + len(_DATA)


def _field(path, header: dict, key: str) -> str:
    if key not in header:
        raise QPIFormatError(path, f"header has no :{key}: field")
    return header[key]


def _data_info(path, text: str) -> list[tuple[str, str, bool]]:
    """``(name, unit, both_directions)`` per channel from the DATA_INFO table."""
    rows = [r.split() for r in text.splitlines() if r.strip()]
    if len(rows) < 2 or [c.lower() for c in rows[0][:4]] != ["channel", "name", "unit",
                                                           "direction"]:
        raise QPIFormatError(path, "DATA_INFO table is missing or damaged")
    table = []
    for r in rows[1:]:
        if len(r) < 4 or r[3].lower() not in ("both", "forward", "backward"):
            raise QPIFormatError(path, f"DATA_INFO row {' '.join(r)!r} is damaged")
        table.append((r[1], r[2], r[3].lower() == "both"))
    if len({n for n, _, _ in table}) != len(table):
        raise QPIFormatError(path, "DATA_INFO lists a channel twice")
    return table


def _dtype(path, scanit_type: str) -> str:
    words = scanit_type.upper().split()
    if "FLOAT" not in words:
        raise QPIFormatError(path, f"SCANIT_TYPE {scanit_type.strip()!r} is not FLOAT")
    return "<f4" if "LSBFIRST" in words else ">f4"


def _frame_difference(a: dict, b: dict) -> str:
    if a["scan_pixels"] != b["scan_pixels"]:
        return f"{b['scan_pixels']} pixels differ from {a['scan_pixels']}"
    if not np.allclose(a["frame_size_m"], b["frame_size_m"], rtol=1e-6, atol=0):
        return f"scan range {b['frame_size_m']} m differs"
    tol = 0.01 * min(a["pixel_size_x_A"], a["pixel_size_y_A"]) * 1e-10
    if not np.allclose(a["frame_center_m"], b["frame_center_m"], rtol=0, atol=tol):
        return f"scan offset {b['frame_center_m']} m differs"
    if abs(a["frame_angle_deg"] - b["frame_angle_deg"]) > 1e-3:
        return f"scan angle {b['frame_angle_deg']}° differs"
    return ""
