"""npe2 reader: QPI stacks as Image layers with physical axes."""

from __future__ import annotations

from pathlib import Path

from ..io import READERS, QPIFormatError, load_stack
from .layers import stack_kwargs


def get_reader(path):
    """Return a reader for a QPI stack file, or None for anything else."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if Path(path).suffix.lower() not in READERS:
        return None
    return read_stack


def read_stack(path):
    """Read one file into an Image LayerDataTuple."""
    if isinstance(path, list):
        path = path[0]
    try:
        stack = load_stack(path)
    except QPIFormatError as exc:
        # napari shows the message as a notification; no layer is added
        raise QPIFormatError(exc.path, exc.problem) from None
    kwargs = stack_kwargs(stack.energies, stack.pixel_size)
    kwargs["name"] = Path(path).stem
    kwargs["metadata"] = {**stack.metadata, "energies": stack.energies.tolist(),
                          "pixel_size": stack.pixel_size, "source": str(path)}
    kwargs["colormap"] = "gray"
    return [(stack.data, kwargs, "image")]
