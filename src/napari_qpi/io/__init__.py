"""Readers, writers and the ``QPIStack`` data model."""

from .errors import QPIFormatError
from .nanonis import load_3ds
from .stack import READERS, QPIStack, load_stack

READERS[".3ds"] = load_3ds

__all__ = ["QPIFormatError", "QPIStack", "READERS", "load_3ds", "load_stack"]
