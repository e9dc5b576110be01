"""Helpers shared by the instrument readers: size caps, channel choice, checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import QPIFormatError

#: Most values a header may ask for (float32: 1 GiB); larger requests are refused
#: before anything is allocated.
MAX_VALUES = 2**28
#: Longest header searched for its end marker.
MAX_HEADER_BYTES = 2**20

_LOCKIN_WORDS = ("li demod", "lock-in", "lockin", "lock in")


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


def finite_stack(path: str | Path, data: np.ndarray, channel: str) -> np.ndarray:
    """Return ``data`` as float32, refusing any NaN or infinite value."""
    with np.errstate(over="ignore", invalid="ignore"):
        data = np.asarray(data).astype(np.float32)
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad == data.size:
        raise QPIFormatError(path, f"channel {channel!r} holds no finite values")
    if bad:
        raise QPIFormatError(path, f"channel {channel!r} holds {bad} NaN or infinite values "
                                   f"of {data.size}")
    return data
