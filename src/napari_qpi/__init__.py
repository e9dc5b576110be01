"""napari-qpi: extract the single-scatterer QPI kernel from STM dI/dV maps.

The public API is small: :func:`simulate`, :func:`extract` (its automatic choices in
:class:`AutoConfig`), :class:`QPIStack` and :func:`load_stack`. Importing the package is
cheap: torch and napari load only when something needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "simulate": "napari_qpi.physics.simulation",
    "Simulation": "napari_qpi.physics.simulation",
    "QPIStack": "napari_qpi.io.stack",
    "load_stack": "napari_qpi.io.load",
    "QPIFormatError": "napari_qpi.io.errors",
    "extract": "napari_qpi.extraction.extract",
    "Extraction": "napari_qpi.extraction.extract",
    "AutoConfig": "napari_qpi.extraction.config",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .extraction.config import AutoConfig
    from .extraction.extract import Extraction, extract
    from .io.errors import QPIFormatError
    from .io.load import load_stack
    from .io.stack import QPIStack
    from .physics.simulation import Simulation, simulate


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_qpi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
