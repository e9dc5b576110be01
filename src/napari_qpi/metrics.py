"""Kernel-quality metrics (public alias of :mod:`napari_qpi.extraction.metrics`)."""

from .extraction.metrics import *  # noqa: F403
from .extraction.metrics import __all__  # noqa: F401
