"""Argument checks shared by the public entry points (scikit-image's ``check_*`` style).

Each helper takes the value and the argument's name, returns the value in its canonical
type, and raises one ``ValueError`` that names the argument, says what it got and what
to pass instead. User input never reaches a traceback from numpy, torch or Qt, and never
meets an ``assert``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = ["check_choice", "check_finite_float", "check_int", "check_nonnegative",
           "check_positive", "check_seed", "check_shape2"]


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (or an integral float such as ``31.0``) within ``[low, high]``.

    Parameters
    ----------
    value : object
        What the user passed.
    name : str
        The argument's name, for the message.
    low, high : int, optional
        Inclusive bounds.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``value`` is not a whole number (``2.5``, ``"3"``, ``True``, NaN) or out of bounds.

    Examples
    --------
    >>> check_int(31.0, "kernel_size")
    31
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be an integer, got {_show(value)}")
    if not np.isfinite(float(value)) or float(value) != int(value):
        hint = round(value) if np.isfinite(float(value)) else 1
        raise ValueError(f"{name} must be a whole number, got {_show(value)}; "
                         f"pass an integer such as {name}={hint}")
    out = int(value)
    if low is not None and out < low:
        raise ValueError(f"{name} must be ≥ {low}, got {out}")
    if high is not None and out > high:
        raise ValueError(f"{name} must be ≤ {high}, got {out}")
    return out


def check_finite_float(value, name: str, *, allow_inf: bool = False) -> float:
    """A real number (Python or numpy scalar); NaN refused, ±inf only if ``allow_inf``.

    Examples
    --------
    >>> check_finite_float(np.float32(2.5), "pixel_size")
    2.5
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {_show(value)}")
    out = float(value)
    if np.isnan(out) or (np.isinf(out) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {out}")
    return out


def check_positive(value, name: str, *, allow_inf: bool = False) -> float:
    """A real number > 0 (``inf`` only if ``allow_inf``)."""
    out = check_finite_float(value, name, allow_inf=allow_inf)
    if out <= 0:
        raise ValueError(f"{name} must be > 0, got {out}")
    return out


def check_nonnegative(value, name: str) -> float:
    """A finite real number ≥ 0 (an amplitude or width where 0 means none)."""
    out = check_finite_float(value, name)
    if out < 0:
        raise ValueError(f"{name} must be ≥ 0 (0 for none), got {out}")
    return out


def check_shape2(value, name: str, *, low: int = 1, high: int | None = None) -> tuple[int, int]:
    """A pair ``(H, W)`` of integers in ``[low, high]``.

    Examples
    --------
    >>> check_shape2((64.0, 32), "shape")
    (64, 32)
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)) \
            or np.ndim(value) != 1 or len(value) != 2:
        raise ValueError(f"{name} must be a pair (H, W) of integers, got {_show(value)}; "
                         f"e.g. {name}=(128, 128)")
    try:
        h, w = (check_int(v, name) for v in value)
    except ValueError:
        hint = tuple(round(v) if isinstance(v, numbers.Real) and np.isfinite(float(v)) else 128
                     for v in value)
        raise ValueError(f"{name} must be a pair (H, W) of whole numbers, got "
                         f"{_show(tuple(value))}; e.g. {name}={hint}") from None
    for side in (h, w):
        if (low is not None and side < low) or (high is not None and side > high):
            bounds = f"≥ {low}" if high is None else f"between {low} and {high}"
            raise ValueError(f"{name}={(h, w)}: each side must be {bounds} pixels")
    return h, w


def check_seed(seed, name: str = "seed"):
    """``None``, a non-negative integer, or a ``numpy.random.Generator``.

    Returns the value as given (an integral float becomes an int).
    """
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Real):
        raise ValueError(f"{name} must be None or a non-negative integer, got {_show(seed)}")
    return check_int(seed, name, low=0)


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={_show(value)} is unknown; choose one of "
                         f"{', '.join(map(repr, choices))}")
    return value
