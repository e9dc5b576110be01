"""``QPIStack``: an energy-resolved stack of dI/dV maps with its physical axes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validation import check_positive
from ._common import ENERGY_LIMIT, PIXEL_SIZE_RANGE, as_float32

__all__ = ["QPIStack", "check_stack"]


@dataclass
class QPIStack:
    """Energy-resolved dI/dV maps.

    Parameters
    ----------
    data : (E, Y, X) array_like
        Real maps, stored as a float32 copy (later changes to the caller's array do not
        reach the stack); a 2-D map becomes a one-energy stack. NaN may mark missing
        pixels; ±inf is refused.
    energies : (E,) array_like, optional
        Energies in meV (bias × e), finite, distinct and within ±1e6 meV; default
        0, 1, 2, … .
    pixel_size : float or None
        Å per pixel, 1e-4 to 1e5; None when unknown (plain ``.npy``/``.tif`` files).
    metadata : dict
        Anything else (header fields, simulation truth); must be JSON-serialisable
        to survive :meth:`save`.

    Raises
    ------
    ValueError
        Data not real numbers, empty, of the wrong shape, infinite, all NaN or beyond
        float32's range; energies not one finite, distinct value per slice; pixel size
        outside 1e-4–1e5 Å. :func:`~napari_qpi.io.load_stack` applies the same rules
        (:func:`check_stack`), so every stack that :meth:`save` writes reads back.
    """

    data: np.ndarray
    energies: np.ndarray | None = None
    pixel_size: float | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data, self.energies, self.pixel_size = check_stack(
            self.data, self.energies, self.pixel_size)
        if not isinstance(self.metadata, dict):
            raise ValueError(f"metadata must be a dict, got {type(self.metadata).__name__}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(E, Y, X)."""
        return self.data.shape  # type: ignore[return-value]

    def save(self, path: str | Path) -> Path:
        """Write to ``.npz`` (data, energies, pixel_size when known, metadata as JSON)."""
        from ._common import MAX_VALUES
        from .arrays import MAX_ENERGIES, MAX_METADATA_BYTES

        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        # the loader's caps, so a file this writes always reads back
        if self.data.size > MAX_VALUES or self.energies.size > MAX_ENERGIES:
            raise ValueError(f"a stack of shape {self.data.shape} is more than load_stack "
                             f"reads ({MAX_VALUES} values, {MAX_ENERGIES} energies); save "
                             "it in parts")
        meta = np.array(json.dumps(self.metadata, default=jsonable))
        if meta.dtype.itemsize > MAX_METADATA_BYTES:
            raise ValueError(f"metadata takes {meta.dtype.itemsize} bytes as JSON, more than "
                             f"the {MAX_METADATA_BYTES} load_stack reads; keep bulky arrays "
                             "out of it")
        known = {} if self.pixel_size is None else {"pixel_size": np.float64(self.pixel_size)}
        np.savez_compressed(path, data=self.data, energies=self.energies, **known,
                            metadata=meta)
        return path


def check_stack(data, energies=None, pixel_size=None):
    """The rules every :class:`QPIStack` meets, in the constructor and in the loader.

    Returns ``(data, energies, pixel_size)``: data a float32 copy (E, Y, X), energies
    float (E,), pixel size a float or None. Raises ValueError naming the argument.
    """
    data = _check_data(data)
    n = data.shape[0]
    if energies is None:
        energies = np.arange(n, dtype=float)
    try:
        energies = np.atleast_1d(np.asarray(energies, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"energies must be numbers (meV), got {energies!r}") from None
    if energies.shape != (n,):
        raise ValueError(f"energies has {energies.size} values for {n} slices")
    if not np.all(np.isfinite(energies)):
        raise ValueError("energies must be finite numbers (meV)")
    if np.any(np.abs(energies) > ENERGY_LIMIT):
        raise ValueError(f"energies must lie within ±{ENERGY_LIMIT:g} meV (bias × e), got "
                         f"up to {np.max(np.abs(energies)):g}; pass meV")
    if np.unique(energies).size != energies.size:
        raise ValueError("energies repeat a value; each slice needs its own energy")
    if pixel_size is not None:
        lo, hi = PIXEL_SIZE_RANGE
        try:
            pixel_size = check_positive(pixel_size, "pixel_size")
        except ValueError as exc:
            raise ValueError(f"{exc}: Å per pixel, or None when unknown") from None
        if not lo <= pixel_size <= hi:
            raise ValueError(f"pixel_size={pixel_size:g} Å is outside the {lo:g}–{hi:g} Å "
                             "an STM map can have; pass Å per pixel, or None when unknown")
    return data, energies, pixel_size


def _check_data(data) -> np.ndarray:
    try:
        data = np.asarray(data)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"data must be an (E, Y, X) or (Y, X) array ({exc})") from None
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"data must be (E, Y, X) or (Y, X), got shape {data.shape}")
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool) or \
            np.iscomplexobj(data):
        raise ValueError(f"data must be real numbers, got dtype {data.dtype}; for complex "
                         "lock-in data pass data.real (in phase) or np.abs(data)")
    if data.size == 0:
        raise ValueError(f"data is an empty array of shape {data.shape}")
    if data.shape[-1] in (3, 4) and min(data.shape[:2]) > 4:
        raise ValueError(f"data has shape {data.shape}, which looks like an RGB(A) image; "
                         "a QPI stack is (E, Y, X) with one value per pixel: pass one "
                         "channel, e.g. data[..., 0]")
    # a copy: the caller's later writes must not change the stack
    out, overflow = as_float32(data)
    out = out.copy() if out is data else out  # as_float32 returns float32 input as is
    if overflow:
        raise ValueError(f"data holds {overflow} values beyond float32's range "
                         "(±3.4e38); rescale them first")
    finite = int(np.count_nonzero(np.isfinite(out)))
    if finite == 0:
        raise ValueError("data holds no finite values (all NaN or infinite)")
    n_inf = out.size - finite - int(np.count_nonzero(np.isnan(out)))
    if n_inf:
        raise ValueError(f"data holds {n_inf} infinite values; only NaN may mark missing "
                         "pixels")
    return out


def jsonable(obj):
    """JSON ``default=`` hook: arrays as lists, numpy scalars as numbers, the rest as text."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def __getattr__(name: str):
    # ``load_stack``/``READERS`` lived here; kept reachable (lazily, so stack.py imports
    # no reader) until every caller imports them from ``napari_qpi.io`` or ``io.load``.
    if name in ("load_stack", "READERS"):
        from . import load

        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
