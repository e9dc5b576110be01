"""Readers, writers and the ``QPIStack`` data model.

``load.py`` registers every reader; ``stack.py`` holds the data model and imports no
reader, so the readers can import it without a loop.
"""

from .errors import QPIFormatError
from .load import READERS, load_stack
from .nanonis import load_3ds
from .stack import QPIStack
from .sxm import load_sxm, load_sxm_series

__all__ = ["QPIFormatError", "QPIStack", "READERS", "load_3ds", "load_stack",
           "load_sxm", "load_sxm_series"]
