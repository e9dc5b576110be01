"""The q-space chain (and the rotation onto the lattice) as recorded steps, so a run
can be replayed.

A step is ``{"step": name, **keyword arguments}`` like a preprocessing step
(:mod:`napari_qpi.io.pipeline`); :func:`replay` applies a list of them in order. Every
keyword is written out when recorded (the lattice's mirror axis as ``axis_angle``, the
q step of a linecut), so a replay needs neither the lattice nor the layer again.

>>> steps = [{"step": "qspace", "window": True, "pad": 1},
...          {"step": "symmetrize", "order": 4, "mirror": False, "axis_angle": 0.0}]
>>> replay(np.ones((2, 16, 16)), steps).shape
(2, 16, 16)
"""

from __future__ import annotations

import numpy as np

from ..io.preprocess import crop
from .align import rotate_map
from .linecut import linecut, magnitude_spectrum, radial_profile
from .symmetry import symmetrize

__all__ = ["STEPS", "replay"]


def _linecut(data, **kwargs):
    return linecut(data, **kwargs)[1]


def _radial(data, **kwargs):
    return radial_profile(data, **kwargs)[1]


#: Step name → function of an array (the previous step's output).
FUNCTIONS = {"crop": crop, "align": rotate_map, "qspace": magnitude_spectrum,
             "symmetrize": symmetrize, "linecut": _linecut, "radial": _radial}
#: Names of the steps :func:`replay` knows.
STEPS = tuple(FUNCTIONS)


def replay(data, steps) -> np.ndarray:
    """Apply recorded steps to ``data``.

    Parameters
    ----------
    data : array_like
        What the first step takes: a real-space (E, Y, X) stack before ``"qspace"``.
    steps : sequence of dict
        ``{"step": name, **keyword arguments}`` with ``name`` in :data:`STEPS`.

    Returns
    -------
    ndarray
        The last step's output.
    """
    out = np.asarray(data, dtype=float)
    for s in steps:
        if not isinstance(s, dict) or s.get("step") not in FUNCTIONS:
            name = s.get("step") if isinstance(s, dict) else s
            raise ValueError(f"analysis step {name!r} is unknown; choose from "
                             f"{', '.join(STEPS)}")
        kwargs = {k: v for k, v in s.items() if k != "step"}
        try:
            out = FUNCTIONS[s["step"]](out, **kwargs)
        except TypeError as exc:
            raise ValueError(f"analysis step {s['step']!r}: {exc}") from None
    return out
