"""Readers, writers and the ``QPIStack`` data model."""

from .errors import QPIFormatError
from .nanonis import load_3ds
from .stack import READERS, QPIStack, load_stack
from .sxm import load_sxm, load_sxm_series

READERS[".3ds"] = load_3ds
READERS[".sxm"] = load_sxm

__all__ = ["QPIFormatError", "QPIStack", "READERS", "load_3ds", "load_stack",
           "load_sxm", "load_sxm_series"]
