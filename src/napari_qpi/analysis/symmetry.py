"""Symmetrisation of q-space images: average over a point group's rotations and mirrors.

A QPI pattern carries the crystal's point group, so averaging an ``|FFT|`` (of the
observation or of the kernel) over the group raises weak scattering vectors above the
speckle of a finite map, and removes what breaks the symmetry (tip anisotropy, drift).

Every element maps each pixel's position about q = 0 (pixel ``n // 2``, where
:func:`numpy.fft.fftshift` puts it) to the position it reads from, sampled bilinearly
with :func:`scipy.ndimage.map_coordinates`. A pixel is kept only where every element
reads inside the image; the rest is set to ``fill``. Under C3/C6 that is everything
outside a polygon just beyond the inscribed circle (a dodecagon under C6): the corners
a rotation brings in from outside the image, which averaged with zeros would print
dim corners (``napari.readouts.symmetrise`` shows them at 1/3–2/3 of a flat image).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .._validation import check_finite_float, check_int

__all__ = ["ORDERS", "symmetrize", "symmetry_operations"]

#: Rotation orders a crystal's point group allows in 2-D.
ORDERS = (1, 2, 3, 4, 6)


def symmetry_operations(order: int, mirror: bool = False,
                        axis_angle: float = 0.0) -> list[np.ndarray]:
    """The 2×2 matrices, acting on ``(y, x)`` offsets, of the group C_order (with
    ``mirror``: D_order, mirrors about the line at ``axis_angle`` degrees and its
    rotations)."""
    order = check_int(order, "order", low=1)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS} (a crystal's rotations), got "
                         f"{order}; pass order=1 for a mirror alone")
    ops = []
    for i in range(order):
        t = 2 * np.pi * i / order
        # counter-clockwise on screen: with y pointing down, (y, x) → this matrix
        ops.append(np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]))
    if mirror:
        phi = np.deg2rad(check_finite_float(axis_angle, "axis_angle"))
        d = np.array([-np.sin(phi), np.cos(phi)])  # the axis as (y, x), y down
        reflect = 2 * np.outer(d, d) - np.eye(2)
        ops += [r @ reflect for r in ops]
    return ops


def symmetrize(image, order: int = 4, *, mirror: bool = False,
               axis_angle: float | None = None, lattice=None,
               fill: float = 0.0) -> np.ndarray:
    """Average a centred q-space image (or stack) over the rotations C_order and mirrors.

    Parameters
    ----------
    image : (..., Y, X) array_like
        Centred q-space image(s), q = 0 at pixel ``(Y // 2, X // 2)`` (``fftshift``):
        an observation's or a kernel's ``|FFT|``; leading axes (energy) are kept.
    order : {1, 2, 3, 4, 6}
        Rotation order (1: no rotation, with ``mirror`` a mirror alone).
    mirror : bool
        Also average over mirrors (the dihedral group D_order).
    axis_angle : float, optional
        Direction of a mirror line, degrees counter-clockwise on screen from +q_x.
        Default the lattice's first Bragg vector when ``lattice`` is given, else the
        q_x axis.
    lattice : Lattice, optional
        From :func:`~napari_qpi.analysis.lattice.measure_lattice`: mirrors about its
        axes. Its ``frame_angle`` is taken off, since the image is in the scan frame.
    fill : float
        Value of pixels some element reads from outside the image (the corners under
        C3/C6, the unpaired edge row of an even side).

    Returns
    -------
    ndarray
        Same shape as ``image``, float64.

    Examples
    --------
    >>> img = np.zeros((5, 5)); img[2, 4] = 4.0  # one spot at +q_x
    >>> symmetrize(img, 4)[[2, 0, 2, 4], [4, 2, 0, 2]].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    arr = np.asarray(image, dtype=float)
    if arr.ndim < 2 or min(arr.shape[-2:]) < 3:
        raise ValueError(f"image must be a (Y, X) q-space image or a stack of them with "
                         f"sides ≥ 3, got shape {arr.shape}")
    fill = check_finite_float(fill, "fill")
    if axis_angle is None:
        axis_angle = 0.0 if lattice is None else float(
            lattice.bragg_angles[0] - lattice.frame_angle)
    ops = symmetry_operations(order, mirror, axis_angle)
    ny, nx = arr.shape[-2:]
    centre = np.array([ny // 2, nx // 2], dtype=float)[:, None]
    offsets = np.indices((ny, nx), dtype=float).reshape(2, -1) - centre
    # every element reads from op⁻¹·r; averaging over a group, op or op⁻¹ is the same
    coords = [np.round(op @ offsets, 9) + centre for op in ops]
    inside = np.all([(c[0] >= 0) & (c[0] <= ny - 1) & (c[1] >= 0) & (c[1] <= nx - 1)
                     for c in coords], axis=0).reshape(ny, nx)
    flat = arr.reshape(-1, ny, nx)
    out = np.empty_like(flat)
    for i, plane in enumerate(flat):
        views = [ndimage.map_coordinates(plane, c, order=1, mode="nearest") for c in coords]
        out[i] = np.where(inside, np.mean(views, axis=0).reshape(ny, nx), fill)
    return out.reshape(arr.shape)
