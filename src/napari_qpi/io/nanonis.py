"""Nanonis grid spectroscopy (``.3ds``) → :class:`QPIStack`.

Layout: an ASCII header of ``key=value`` lines ending with ``:HEADER_END:``, then
big-endian float32. Pixels follow in scan order (x fastest); each pixel holds its
``# Parameters (4 byte)`` parameters (the first two are the sweep start and end), then
each channel's ``Points`` values in turn.
"""

from __future__ import annotations

import re
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
    norm,
    read_capped,
    to_float,
    to_floats,
    to_ints,
)
from .errors import QPIFormatError
from .stack import QPIStack

__all__ = ["load_3ds"]

_END = b":HEADER_END:"
_BWD = re.compile(r"\s*\[bwd\]", re.IGNORECASE)


def load_3ds(path: str | Path, channel: str | None = None) -> QPIStack:
    """Read a Nanonis grid-spectroscopy file.

    Parameters
    ----------
    path : str or Path
        ``.3ds`` file.
    channel : str, optional
        Channel name or a unique case-insensitive substring of it (``"lockinx"``,
        ``"current"``). Forward and ``[bwd]`` sweeps of a channel are averaged; name the
        ``[bwd]`` channel in full to read it alone. Default: the lock-in X channel, else
        the numerical dI/dV (``np.gradient`` over bias) of the current.

    Returns
    -------
    QPIStack
        ``(E, Y, X)`` float32, energies in meV (sample bias × 1000) ascending, row 0 the
        first scan line, pixel size in Å. ``metadata["header"]`` holds every header field.

    Raises
    ------
    QPIFormatError
        The file is empty, damaged, truncated, disagrees with its header, holds NaN,
        or the channel is unknown.
    """
    path = as_path(path)
    return parse_3ds(read_capped(path), path, channel)


def parse_3ds(raw: bytes, path: str | Path = "<bytes>", channel: str | None = None) -> QPIStack:
    """Parse the bytes of a ``.3ds`` file (see :func:`load_3ds`)."""
    header, offset = _header(raw, path)
    nx, ny = to_ints(path, _field(path, header, "Grid dim"), "Grid dim", 2)
    points = to_ints(path, _field(path, header, "Points"), "Points", 1)[0]
    n_par = to_ints(path, _field(path, header, "# Parameters (4 byte)"), "# Parameters", 1)[0]
    names = [c.strip() for c in _field(path, header, "Channels").split(";") if c.strip()]
    if not names:
        raise QPIFormatError(path, "header lists no channels")
    if "Experiment size (bytes)" in header:
        exp = to_ints(path, header["Experiment size (bytes)"], "Experiment size", 1)[0]
        if exp != 4 * points * len(names):
            raise QPIFormatError(path, f"header says {exp} bytes per pixel for {len(names)} "
                                       f"channels of {points} points ({4 * points * len(names)})")
    if n_par < 2:
        raise QPIFormatError(path, f"header lists {n_par} parameters; need sweep start and end")
    per_pixel = n_par + points * len(names)
    check_count(path, nx * ny * per_pixel, "values")
    have = len(raw) - offset
    if have != 4 * nx * ny * per_pixel:
        raise QPIFormatError(path, f"holds {have} data bytes; header (Grid dim {nx} x {ny}, "
                                   f"{n_par} parameters, {len(names)} channels × {points} "
                                   f"points) needs {4 * nx * ny * per_pixel}")
    block = np.frombuffer(raw, ">f4", offset=offset).reshape(ny, nx, per_pixel)
    params = block[..., :n_par]
    curves = block[..., n_par:].reshape(ny, nx, len(names), points)

    with np.errstate(all="ignore"):  # signalling NaNs in damaged data warn on cast
        bias = _bias_axis(path, header, params, points)
        data, chosen, derived = _select(path, names, curves, channel, bias)
    data, ny_measured = _drop_unmeasured_rows(path, data, chosen)
    data = np.moveaxis(data, -1, 0)  # (E, Y, X)
    if bias[0] > bias[-1]:
        bias, data = bias[::-1], data[::-1]
    data = finite_stack(path, data, chosen)

    cx, cy, width, height, angle = to_floats(
        path, _field(path, header, "Grid settings"), "Grid settings", 5, sep=";")
    if width <= 0 or height <= 0:
        raise QPIFormatError(path, f"Grid settings give a {width} × {height} m frame")
    px = check_pixel_size(path, width / nx * 1e10, "Grid settings")
    py = check_pixel_size(path, height / ny * 1e10, "Grid settings")
    with np.errstate(over="ignore"):
        energies = bias * 1000.0
    check_energies(path, energies, "the sweep")
    unit = re.search(r"\(([^()]*)\)\s*$", chosen)
    unit = "A/V" if derived.startswith("numerical") else (unit.group(1) if unit else "")
    meta = {
        "format": "nanonis-3ds", "source": str(path), "channel": chosen,
        "channels": names, "derived": derived, "unit": unit,
        "sweep_signal": header.get("Sweep Signal", ""),
        "bias_V": [float(bias[0]), float(bias[-1])],
        "frame_center_m": [cx, cy], "frame_size_m": [width, height],
        "frame_angle_deg": angle, "pixel_size_x_A": px, "pixel_size_y_A": py,
        "grid_dim": [nx, ny], "rows_measured": ny_measured, "header": header,
    }
    return QPIStack(data, energies, px, meta)


def _header(raw: bytes, path) -> tuple[dict, int]:
    end = raw.find(_END, 0, MAX_HEADER_BYTES)
    if not raw:
        raise QPIFormatError(path, "file is empty")
    if end < 0:
        raise QPIFormatError(path, "no ':HEADER_END:' marker; not a Nanonis .3ds file")
    offset = end + len(_END)
    for eol in (b"\r\n", b"\n"):
        if raw.startswith(eol, offset):
            offset += len(eol)
            break
    header = {}
    for line in raw[:end].decode("latin-1").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            header[key.strip()] = value.strip().strip('"')
    if "Grid dim" not in header:
        raise QPIFormatError(path, "header has no 'Grid dim'; not a Nanonis .3ds file")
    return header, offset


def _field(path, header: dict, key: str) -> str:
    if key not in header:
        raise QPIFormatError(path, f"header has no {key!r} field")
    return header[key]


def _bias_axis(path, header: dict, params: np.ndarray, points: int) -> np.ndarray:
    signal = header.get("Sweep Signal", "Bias (V)")
    unit = re.search(r"\(([^()]*)\)\s*$", signal)
    scale = {"v": 1.0, "mv": 1e-3}.get(unit.group(1).lower() if unit else "", None)
    if "bias" not in signal.lower() or scale is None:
        raise QPIFormatError(path, f"sweep signal {signal!r} is not a bias in V or mV; "
                                   "no energy axis")
    ends = []
    for k, what in ((0, "start"), (1, "end")):
        v = params[..., k].astype(np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            raise QPIFormatError(path, f"no pixel holds a finite sweep {what}")
        ends.append(to_float(path, repr(float(np.median(v))), f"sweep {what}") * scale)
    if points > 1 and ends[0] == ends[1]:
        raise QPIFormatError(path, f"sweep start equals sweep end ({ends[0]} V)")
    return np.linspace(ends[0], ends[1], points)


def _select(path, names, curves, channel, bias):
    """Return (Y, X, E) float64 data, the channel name and how it was derived."""
    base = [n for n in names if not _BWD.search(n)]
    bwd = {_BWD.sub("", n): i for i, n in enumerate(names) if _BWD.search(n)}
    if channel is None:
        chosen = default_lockin(base)
        if chosen is None:
            current = [n for n in base if norm(n).startswith("current")]
            if not current:
                raise QPIFormatError(path, "no lock-in or current channel for dI/dV; "
                                           f"channels: {', '.join(names)}")
            if bias.size < 2:
                raise QPIFormatError(path, "one sweep point: cannot differentiate the current")
            data = _pair(names, bwd, curves, current[0])
            data = np.gradient(data, bias, axis=-1)
            return data, current[0], "numerical dI/dV: np.gradient of current over bias"
    else:
        chosen = match_channel(path, base + [n for n in names if _BWD.search(n)], channel)
    if _BWD.search(chosen):
        return curves[:, :, names.index(chosen)].astype(np.float64), chosen, "backward sweep"
    how = "mean of forward and backward sweeps" if chosen in bwd else "forward sweep"
    return _pair(names, bwd, curves, chosen), chosen, how


def _pair(names, bwd, curves, name):
    data = curves[:, :, names.index(name)].astype(np.float64)
    if name in bwd:
        data = 0.5 * (data + curves[:, :, bwd[name]])
    return data


def _drop_unmeasured_rows(path, data: np.ndarray, channel: str) -> tuple[np.ndarray, int]:
    """Crop trailing scan lines that are entirely NaN (a grid stopped early)."""
    row_empty = ~np.isfinite(data).any(axis=(1, 2))
    n = data.shape[0]
    while n > 0 and row_empty[n - 1]:
        n -= 1
    if n == 0:
        raise QPIFormatError(path, f"channel {channel!r} holds no finite values")
    return data[:n], n
