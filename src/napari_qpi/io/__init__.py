"""Readers, writers and the ``QPIStack`` data model."""

from .errors import QPIFormatError
from .stack import READERS, QPIStack, load_stack

__all__ = ["QPIFormatError", "QPIStack", "READERS", "load_stack"]
