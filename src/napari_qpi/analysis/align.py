"""Registration of a map to the crystal's axes: rotate it so that a1 lies along +x.

Comparing maps, or reading Γ–X off a fixed axis, needs the lattice in one orientation.
The rotation is :func:`scipy.ndimage.rotate` about the map's centre (bilinear by
default, so no ringing), the same for every energy.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .._validation import check_finite_float, check_int

__all__ = ["align_to_lattice", "rotate_map"]


def align_to_lattice(data, lattice, *, order: int = 1, fill: float | None = None
                     ) -> np.ndarray:
    """Rotate a map or stack so that the lattice's a1 points along +x on screen.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
        Real-space map(s) in the scan frame.
    lattice : Lattice
        From :func:`~napari_qpi.analysis.lattice.measure_lattice` on the same map (its
        ``frame_angle`` is not used: the map is in the scan frame).
    order : int
        Spline order of the resampling (0–5).
    fill : float, optional
        Value of the corners brought in from outside; default each slice's mean, so
        they add no step to its ``|FFT|``.

    Returns
    -------
    ndarray
        Same shape as ``data``; the rotated map(s), sides unchanged.
    """
    a1 = np.asarray(lattice.real, dtype=float)[0]
    angle = float(np.degrees(np.arctan2(-a1[0], a1[1])))  # a1's angle on screen
    return rotate_map(data, -angle, order=order, fill=fill)


def rotate_map(data, angle: float, *, order: int = 1, fill: float | None = None
               ) -> np.ndarray:
    """Rotate a map or stack by ``angle`` degrees counter-clockwise on screen about its
    centre (sides unchanged); ``order`` and ``fill`` as in :func:`align_to_lattice`."""
    order = check_int(order, "order", low=0, high=5)
    angle = check_finite_float(angle, "angle")
    arr = np.asarray(data, dtype=float)
    if arr.ndim not in (2, 3):
        raise ValueError(f"data must be a (Y, X) map or (E, Y, X) stack, got shape "
                         f"{arr.shape}")
    flat = arr.reshape(-1, *arr.shape[-2:])
    out = np.empty_like(flat)
    for i, plane in enumerate(flat):
        cval = float(plane.mean()) if fill is None else float(fill)
        # ndimage turns counter-clockwise on screen (rows down) for a positive angle
        out[i] = ndimage.rotate(plane, angle, reshape=False, order=order,
                                mode="constant", cval=cval)
    return out.reshape(arr.shape)
