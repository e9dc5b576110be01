"""LayerDataTuples from library objects, with one coordinate system for all."""

from __future__ import annotations

import numpy as np

UNITS = ("meV", "angstrom", "angstrom")
AXIS_LABELS = ("E", "y", "x")


def stack_kwargs(energies: np.ndarray, pixel_size: float) -> dict:
    """scale/translate/units/axis_labels for an (E, Y, X) layer.

    The energy step is the mean spacing; exact (possibly non-uniform) energies go to
    the layer's metadata.
    """
    energies = np.asarray(energies, dtype=float)
    step = float(np.mean(np.diff(energies))) if energies.size > 1 else 1.0
    if step == 0:
        step = 1.0
    return {
        "scale": (step, pixel_size, pixel_size),
        "translate": (float(energies[0]), 0.0, 0.0),
        "units": UNITS,
        "axis_labels": AXIS_LABELS,
    }
