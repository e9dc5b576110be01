"""Helpers shared by the instrument readers: size caps, channel choice, checks."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import numpy as np

from .errors import QPIFormatError

#: Most values a header may ask for (float32: 1 GiB); larger requests are refused
#: before anything is allocated.
MAX_VALUES = 2**28
#: Most data bytes one array member of an ``.npz``/``.npy`` may declare (1 GiB).
MAX_DATA_BYTES = 4 * MAX_VALUES
#: Longest header searched for its end marker.
MAX_HEADER_BYTES = 2**20
#: Pixel sizes (Å) an STM map can have: 1e-4 Å (far below any atom) to 10 µm.
PIXEL_SIZE_RANGE = (1e-4, 1e5)
#: Largest |energy| (meV) a slice can have: STM biases stay within a few volts; 1 keV
#: only catches garbage (a header in the wrong unit, an overflowed number).
ENERGY_LIMIT = 1e6

_LOCKIN_WORDS = ("li demod", "lock-in", "lockin", "lock in")


def as_path(path) -> Path:
    """``path`` as a Path, or QPIFormatError when it is not a file name at all."""
    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise QPIFormatError(repr(path)[:80], "path must be a file name (str or "
                                              f"pathlib.Path), got {type(path).__name__}")
    return Path(path)


def check_file(path: Path) -> None:
    """Refuse what is not a regular file, each case with its own message: missing, a
    directory, a FIFO or device, a symbolic-link loop, a path too long."""
    try:
        mode = path.stat().st_mode  # follows links: a link to a file is that file
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            text = str(path)
            raise QPIFormatError(f"{text[:40]}…{text[-20:]}", "path too long (it, or a "
                                 f"name in it, exceeds this system's limit; {len(text)} "
                                 "characters); pass a shorter path") from None
        problem = {errno.ENOENT: "no such file",
                   errno.ENOTDIR: "no such file (a part of the path is not a folder)",
                   errno.ELOOP: "too many levels of symbolic links (a link loop); pass "
                                "the file itself",
                   errno.EACCES: "permission denied"}.get(exc.errno)
        raise QPIFormatError(path, problem or f"cannot be read ({exc.strerror or exc})") \
            from None
    if stat.S_ISDIR(mode):
        raise QPIFormatError(path, "is a directory; pass a file such as "
                                   f"{path / 'stack.npz'}")
    if not stat.S_ISREG(mode):
        raise QPIFormatError(path, "is not a regular file (a FIFO, socket or device); pass "
                                   "a stack file saved on disk")


def exists(path: Path) -> bool:
    """Whether anything (even a broken or looping link) is at ``path``."""
    return os.path.lexists(path)


def read_capped(path: Path) -> bytes:
    """Read a whole file, refusing empty files and files too large to be a stack."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise QPIFormatError(path, "file is empty")
        if size > 4 * MAX_VALUES + MAX_HEADER_BYTES:
            raise QPIFormatError(path, f"file is {size} bytes, more than any stack this "
                                       f"reader accepts ({4 * MAX_VALUES} data bytes)")
        return path.read_bytes()
    except OSError as exc:
        raise QPIFormatError(path, f"cannot be read ({exc})") from None


def check_count(path: str | Path, count: int, what: str) -> None:
    """Refuse a header that asks for more than :data:`MAX_VALUES` values or none."""
    if count <= 0:
        raise QPIFormatError(path, f"header asks for {count} {what}")
    if count > MAX_VALUES:
        raise QPIFormatError(path, f"header asks for {count} {what}, more than the "
                                   f"{MAX_VALUES} this reader accepts")


def to_float(path: str | Path, text: str, key: str) -> float:
    """Parse one finite number from a header value."""
    try:
        value = float(text.strip().strip('"'))
    except ValueError:
        raise QPIFormatError(path, f"header field {key!r} is not a number: {text!r}") from None
    if not np.isfinite(value):
        raise QPIFormatError(path, f"header field {key!r} is not finite: {text!r}")
    return value


def to_floats(path: str | Path, text: str, key: str, n: int, sep: str | None = None) -> list:
    """Parse exactly ``n`` finite numbers separated by ``sep`` (whitespace by default)."""
    parts = [p for p in text.strip().strip('"').split(sep) if p.strip()]
    if len(parts) != n:
        raise QPIFormatError(path, f"header field {key!r} should hold {n} numbers, "
                                   f"got {text!r}")
    return [to_float(path, p, key) for p in parts]


def to_ints(path: str | Path, text: str, key: str, n: int) -> list:
    """Parse exactly ``n`` non-negative integers (``"30 x 30"``, ``"256 256"``)."""
    parts = re.findall(r"[^\sx\"]+", text)
    if len(parts) != n or not all(p.isdigit() and p.isascii() for p in parts):
        raise QPIFormatError(path, f"header field {key!r} should hold {n} integers, "
                                   f"got {text!r}")
    values = [int(p) for p in parts]
    for v in values:
        check_count(path, v, key)
    return values


def norm(name: str) -> str:
    """Channel name for matching: lower case, underscores as spaces."""
    return " ".join(name.replace("_", " ").lower().split())


def strip_unit(name: str) -> str:
    """``"LockinX (V)"`` → ``"LockinX"``."""
    return re.sub(r"\s*\([^()]*\)\s*$", "", name).strip()


def match_channel(path: str | Path, names: list[str], channel: str) -> str:
    """Pick one of ``names`` by exact name, name without unit, or unique substring.

    A substring matching a channel and its ``[bwd]`` twin picks the channel.

    Matching ignores case and treats ``_`` as a space.

    Raises
    ------
    QPIFormatError
        No channel, or several channels, match.
    """
    if not isinstance(channel, str) or not channel.strip():
        raise QPIFormatError(path, f"channel must be a non-empty string, got {channel!r}")
    q = norm(channel)
    for key in (norm, lambda n: norm(strip_unit(n))):
        exact = [n for n in names if key(n) == q]
        if len(exact) == 1:
            return exact[0]
    hits = [n for n in names if q in norm(n)]
    forward = {re.sub(r"\s*\[bwd\]", "", n, flags=re.IGNORECASE) for n in hits}
    if len(forward) == 1 and forward <= set(hits):
        return forward.pop()  # a channel and its [bwd] twin: the channel
    if not hits:
        raise QPIFormatError(path, f"no channel matches {channel!r}; channels: "
                                   f"{', '.join(names)}")
    raise QPIFormatError(path, f"channel {channel!r} is ambiguous; it matches "
                               f"{', '.join(hits)}")


def default_lockin(names: list[str]) -> str | None:
    """The lock-in (dI/dV) channel among ``names``, preferring the X (in-phase) output."""
    lockin = [n for n in names if any(w in norm(n) for w in _LOCKIN_WORDS)]
    for n in lockin:
        if norm(strip_unit(n)).endswith("x"):
            return n
    return lockin[0] if lockin else None


def as_float32(data) -> tuple[np.ndarray, int]:
    """``data`` as float32 (no copy if it is already) and how many finite values the
    conversion turned into ±inf (they lie beyond float32's ±3.4e38)."""
    data = np.asarray(data)
    if data.dtype == np.float32:
        return data, 0
    if not np.issubdtype(data.dtype, np.floating):  # integers and bools cannot overflow
        return data.astype(np.float32), 0
    before = int(np.count_nonzero(np.isinf(data)))
    with np.errstate(over="ignore", invalid="ignore"):
        out = data.astype(np.float32)
    return out, int(np.count_nonzero(np.isinf(out))) - before


def check_pixel_size(path: str | Path, value: float, source: str) -> float:
    """A pixel size (Å) from a file header: finite and within :data:`PIXEL_SIZE_RANGE`."""
    lo, hi = PIXEL_SIZE_RANGE
    if not np.isfinite(value) or not lo <= value <= hi:
        raise QPIFormatError(path, f"{source} gives a pixel size of {value:g} Å, outside "
                                   f"the {lo:g}–{hi:g} Å an STM map can have")
    return float(value)


def check_energies(path: str | Path, energies: np.ndarray, source: str = "energies") -> None:
    """Refuse non-finite, absurd (beyond :data:`ENERGY_LIMIT`) or repeated energies
    (meV) read from a file."""
    if not np.all(np.isfinite(energies)):
        raise QPIFormatError(path, f"{source} gives energies that are not all finite: "
                                   f"{_brief(energies)} meV")
    if np.any(np.abs(energies) > ENERGY_LIMIT):
        raise QPIFormatError(path, f"{source} gives energies beyond ±{ENERGY_LIMIT:g} meV: "
                                   f"{_brief(energies)} meV")
    repeated = np.unique(energies).size != energies.size
    if repeated:
        raise QPIFormatError(path, f"energies repeat a value: {_brief(energies)} meV; "
                                   "each slice needs its own energy")


def _brief(values: np.ndarray) -> str:
    values = np.asarray(values).ravel()
    text = ", ".join(f"{v:g}" for v in values[:6])
    return f"[{text}{', ...' if values.size > 6 else ''}]"


def finite_stack(path: str | Path, data: np.ndarray, channel: str) -> np.ndarray:
    """Return ``data`` as float32, refusing any NaN or infinite value."""
    data, overflow = as_float32(data)
    if overflow:
        raise QPIFormatError(path, f"channel {channel!r} holds {overflow} values beyond "
                                   "float32's range (±3.4e38)")
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad == data.size:
        raise QPIFormatError(path, f"channel {channel!r} holds no finite values")
    if bad:
        raise QPIFormatError(path, f"channel {channel!r} holds {bad} NaN or infinite values "
                                   f"of {data.size}")
    return data
