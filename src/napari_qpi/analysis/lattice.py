"""The atomic lattice as vectors: Bragg peaks read out, not only notched.

:func:`napari_qpi.io.lattice.find_bragg_peaks` finds the Bragg peaks (rad/px) and
:func:`~napari_qpi.io.lattice.lattice_vectors` keeps two non-collinear ones refined to
sub-pixel; :func:`measure_lattice` turns them into reciprocal and real-space lattice
vectors in the stack's units, with lengths, angles and the lattice's kind.

Conventions used through :mod:`napari_qpi.analysis`: vectors are stored in array order
``(y, x)`` (rows down the screen); an angle is in degrees, counter-clockwise on the
screen from +x (so a vector ``(v_y, v_x)`` has angle ``atan2(-v_y, v_x)``), plus the
scan frame's own rotation when ``frame_angle`` is given, so angles are in the sample's
frame. Reciprocal vectors carry the 2π: ``a_i · b_j = 2π δ_ij``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_finite_float, check_positive
from ..io.lattice import find_bragg_peaks, lattice_vectors

__all__ = ["Lattice", "measure_lattice", "refine_peak", "vector_angle"]

#: How close (relative) two lengths, and (degrees) an angle, must be to call a lattice
#: square or hexagonal: drift that Lawler–Fujita has not removed distorts a real lattice
#: by about a percent.
LENGTH_TOLERANCE = 0.03
ANGLE_TOLERANCE = 2.0


def vector_angle(vectors, frame_angle: float = 0.0) -> np.ndarray:
    """Angle (degrees, counter-clockwise on screen from +x, in [0, 360)) of ``(y, x)``
    vectors, rotated by the scan frame's ``frame_angle``."""
    v = np.asarray(vectors, dtype=float).reshape(-1, 2) + 0.0  # + 0.0: no −0.0 (−180°)
    angle = np.degrees(np.arctan2(0.0 - v[:, 0], v[:, 1])) + frame_angle
    return np.mod(np.round(angle, 9), 360.0)


@dataclass(frozen=True)
class Lattice:
    """A 2-D Bravais lattice measured from a map.

    Attributes
    ----------
    reciprocal : (2, 2) ndarray
        Rows b1, b2 as ``(q_y, q_x)``: Å⁻¹ (rad/px when ``unit`` is ``"px"``).
    real : (2, 2) ndarray
        Rows a1, a2 as ``(y, x)`` with ``a_i · b_j = 2π δ_ij``: Å (px).
    unit : str
        ``"Å"`` or ``"px"``: the length unit of ``real`` (``reciprocal`` is its inverse).
    frame_angle : float
        The scan frame's rotation (degrees) added to every angle.
    """

    reciprocal: np.ndarray
    real: np.ndarray
    unit: str = "Å"
    frame_angle: float = 0.0

    @property
    def constants(self) -> np.ndarray:
        """|a1|, |a2| (Å or px)."""
        return np.linalg.norm(self.real, axis=1)

    @property
    def bragg_lengths(self) -> np.ndarray:
        """|b1|, |b2| (Å⁻¹ or rad/px)."""
        return np.linalg.norm(self.reciprocal, axis=1)

    @property
    def angles(self) -> np.ndarray:
        """Angles of a1, a2 (degrees)."""
        return vector_angle(self.real, self.frame_angle)

    @property
    def bragg_angles(self) -> np.ndarray:
        """Angles of b1, b2 (degrees)."""
        return vector_angle(self.reciprocal, self.frame_angle)

    @property
    def gamma(self) -> float:
        """The angle between a1 and a2 (degrees, 0–180)."""
        a1, a2 = self.real
        cos = a1 @ a2 / (np.linalg.norm(a1) * np.linalg.norm(a2))
        return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))

    @property
    def kind(self) -> str:
        """``"square"``, ``"hexagonal"``, ``"rectangular"`` or ``"oblique"``."""
        a, b = self.constants
        equal = abs(a - b) <= LENGTH_TOLERANCE * max(a, b)
        g = self.gamma
        if abs(g - 90.0) <= ANGLE_TOLERANCE:
            return "square" if equal else "rectangular"
        if equal and min(abs(g - 60.0), abs(g - 120.0)) <= ANGLE_TOLERANCE:
            return "hexagonal"
        return "oblique"

    def as_dict(self) -> dict:
        """JSON-ready summary (lists and floats), e.g. for a layer's metadata."""
        return {"kind": self.kind, "unit": self.unit, "frame_angle": self.frame_angle,
                "real": self.real.tolist(), "reciprocal": self.reciprocal.tolist(),
                "constants": self.constants.tolist(), "angles": self.angles.tolist(),
                "bragg_lengths": self.bragg_lengths.tolist(),
                "bragg_angles": self.bragg_angles.tolist(), "gamma": self.gamma}


def measure_lattice(data, pixel_size: float | None = None, *, peaks=None,
                    frame_angle: float = 0.0, **find_options) -> Lattice | None:
    """Lattice vectors of the atomic lattice seen in a map or stack.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
        Real-space map(s); the Bragg peaks are found on the energy-averaged power
        spectrum and refined on the energy average.
    pixel_size : float, optional
        Å per pixel; without it lengths are in pixels.
    peaks : (P, 2) array_like, optional
        Bragg wavevectors (rad/px, ``(q_y, q_x)``) if already known, e.g. from
        :func:`~napari_qpi.io.lattice.find_bragg_peaks`.
    frame_angle : float
        Rotation of the scan frame in degrees (a Nanonis ``.sxm``'s
        ``metadata["frame_angle_deg"]``), added to every angle.
    **find_options
        Passed to :func:`~napari_qpi.io.lattice.find_bragg_peaks` (``prominence``,
        ``q_min``, ``n_peaks``).

    Returns
    -------
    Lattice or None
        None when fewer than two non-collinear Bragg peaks stand out (no lattice seen).

    Examples
    --------
    >>> yy, xx = np.mgrid[:64, :64]
    >>> image = np.cos(2 * np.pi * xx / 4) + np.cos(2 * np.pi * yy / 4)
    >>> lat = measure_lattice(image, pixel_size=0.9)
    >>> lat.kind, np.round(lat.constants, 3).tolist()
    ('square', [3.6, 3.6])
    """
    step = 1.0 if pixel_size is None else check_positive(pixel_size, "pixel_size")
    frame_angle = check_finite_float(frame_angle, "frame_angle")
    arr = np.asarray(data, dtype=float)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(f"data must be a (Y, X) map or (E, Y, X) stack, got shape "
                         f"{arr.shape}")
    found = find_bragg_peaks(arr, **find_options) if peaks is None else \
        np.asarray(peaks, dtype=float).reshape(-1, 2)
    mean = arr if arr.ndim == 2 else arr.mean(axis=0)
    b = lattice_vectors(found, mean)
    if b is None:
        return None
    b = _canonical(np.stack([refine_peak(mean, bj) for bj in b])) / step
    a = 2 * np.pi * np.linalg.inv(b).T  # rows a_i with a_i · b_j = 2π δ_ij
    return Lattice(reciprocal=b, real=a, unit="px" if pixel_size is None else "Å",
                   frame_angle=frame_angle)


def refine_peak(image: np.ndarray, q) -> np.ndarray:
    """A Bragg wavevector (rad/px) refined to the maximum of the Hann-windowed image's
    continuous Fourier transform near it.

    Written here because the FFT grid's centroid (what drift correction needs) is
    biased by leakage when the period does not divide the map, by ~1–2 % on a 64 px
    map; the windowed transform's maximum, found by Nelder–Mead
    (:func:`scipy.optimize.minimize`) within a grid step, is not.
    """
    from scipy.optimize import minimize

    image = np.asarray(image, dtype=float)
    ny, nx = image.shape
    windowed = (image - image.mean()) * np.outer(np.hanning(ny), np.hanning(nx))
    y, x = np.arange(ny, dtype=float), np.arange(nx, dtype=float)

    def power(qq):
        return -abs(np.exp(-1j * qq[0] * y) @ windowed @ np.exp(-1j * qq[1] * x)) ** 2

    q = np.asarray(q, dtype=float)
    grid = np.array([2 * np.pi / ny, 2 * np.pi / nx])
    best = minimize(power, q, method="Nelder-Mead",
                    options={"initial_simplex": [q, q + [grid[0] / 2, 0], q + [0, grid[1] / 2]],
                             "xatol": 1e-6, "fatol": 1e-12 * abs(power(q))})
    return best.x if np.all(np.abs(best.x - q) <= grid) else q


def _canonical(b: np.ndarray) -> np.ndarray:
    """The pair ordered by angle in [0°, 180°) (each Bragg peak stands for ±b), b1 the
    one nearest +x, so the same lattice always reads the same."""
    ang = vector_angle(b)
    b = np.where((ang >= 180.0)[:, None], -b, b)
    return b[np.argsort(vector_angle(b))]
