"""The napari layer: manifest commands and widgets, thin over the library.

Importing this package is cheap (npe2 imports command modules one by one); the
console helper :func:`extract_layer` loads on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__all__ = ["extract_layer"]

if TYPE_CHECKING:  # pragma: no cover
    from .compute import extract_layer


def __getattr__(name: str):
    if name == "extract_layer":
        return import_module(".compute", __name__).extract_layer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
