"""``QPIStack``: an energy-resolved stack of dI/dV maps with its physical axes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validation import check_positive
from ._common import as_float32

__all__ = ["QPIStack"]


@dataclass
class QPIStack:
    """Energy-resolved dI/dV maps.

    Parameters
    ----------
    data : (E, Y, X) array_like
        Real maps, stored as float32; a 2-D map becomes a one-energy stack.
    energies : (E,) array_like, optional
        Energies in meV (bias × e), finite and distinct; default 0, 1, 2, … .
    pixel_size : float or None
        Å per pixel; None when unknown (plain ``.npy``/``.tif`` files).
    metadata : dict
        Anything else (header fields, simulation truth); must be JSON-serialisable
        to survive :meth:`save`.

    Raises
    ------
    ValueError
        Data not real numbers, of the wrong shape or beyond float32's range; energies not
        one finite, distinct value per slice; pixel size not finite and > 0.
    """

    data: np.ndarray
    energies: np.ndarray | None = None
    pixel_size: float | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ValueError(f"data must be (E, Y, X) or (Y, X), got shape {data.shape}")
        if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool) or \
                np.iscomplexobj(data):
            raise ValueError(f"data must be real numbers, got dtype {data.dtype}; for complex "
                             "lock-in data pass data.real (in phase) or np.abs(data)")
        self.data, overflow = as_float32(data)
        if overflow:
            raise ValueError(f"data holds {overflow} values beyond float32's range "
                             "(±3.4e38); rescale them first")
        if self.energies is None:
            self.energies = np.arange(data.shape[0], dtype=float)
        try:
            self.energies = np.atleast_1d(np.asarray(self.energies, dtype=float))
        except (TypeError, ValueError):
            raise ValueError(f"energies must be numbers (meV), got {self.energies!r}") from None
        if self.energies.shape != (data.shape[0],):
            raise ValueError(
                f"energies has {self.energies.size} values for {data.shape[0]} slices")
        if not np.all(np.isfinite(self.energies)):
            raise ValueError("energies must be finite numbers (meV)")
        if np.unique(self.energies).size != self.energies.size:
            raise ValueError("energies repeat a value; each slice needs its own energy")
        if self.pixel_size is not None:
            try:
                self.pixel_size = check_positive(self.pixel_size, "pixel_size")
            except ValueError as exc:
                raise ValueError(f"{exc}: Å per pixel, or None when unknown") from None
        if not isinstance(self.metadata, dict):
            raise ValueError(f"metadata must be a dict, got {type(self.metadata).__name__}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(E, Y, X)."""
        return self.data.shape  # type: ignore[return-value]

    def save(self, path: str | Path) -> Path:
        """Write to ``.npz`` (data, energies, pixel_size when known, metadata as JSON)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        known = {} if self.pixel_size is None else {"pixel_size": np.float64(self.pixel_size)}
        np.savez_compressed(
            path, data=self.data, energies=self.energies, **known,
            metadata=np.array(json.dumps(self.metadata, default=jsonable)),
        )
        return path


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
