"""q-space images, their high-symmetry directions, linecuts and radial profiles.

An E(q) cut is what a QPI physicist reads a band from: ``|FFT|`` along one direction
from Γ (q = 0) for every energy. The directions that matter are the crystal's: Γ–X and
Γ–M of a square lattice, Γ–M and Γ–K of a hexagonal one, read from the measured
:class:`~napari_qpi.analysis.lattice.Lattice`. Wavevectors are in Å⁻¹ when a pixel
size is given (rad/px without), with the 2π: q = 2π·f.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .._validation import check_int, check_positive

__all__ = ["high_symmetry_points", "linecut", "magnitude_spectrum", "q_steps",
           "radial_profile"]


def magnitude_spectrum(stack, *, window: bool = True, pad: int = 1) -> np.ndarray:
    """Centred ``|FFT|`` of each slice, q = 0 at pixel ``(Y' // 2, X' // 2)``.

    Parameters
    ----------
    stack : (..., Y, X) array_like
        Real-space maps or kernels.
    window : bool
        Hann-window each slice (maps: yes, so the edges draw no cross through q = 0; a
        kernel, which decays inside its window, needs none).
    pad : int
        Zero-pad to ``pad`` × the size: a finer q grid (sinc interpolation), which a
        small kernel window needs to place a ring to better than its q step.

    Returns
    -------
    (..., pad·Y, pad·X) ndarray
    """
    arr = np.asarray(stack, dtype=float)
    if arr.ndim < 2:
        raise ValueError(f"stack must be (..., Y, X), got shape {arr.shape}")
    pad = check_int(pad, "pad", low=1, high=16)
    arr = arr - arr.mean(axis=(-2, -1), keepdims=True)
    ny, nx = arr.shape[-2:]
    if window:
        arr = arr * np.outer(np.hanning(ny), np.hanning(nx))
    spectrum = np.fft.fft2(arr, s=(pad * ny, pad * nx))
    return np.fft.fftshift(np.abs(spectrum), axes=(-2, -1))


def q_steps(shape, pixel_size: float | None = None) -> np.ndarray:
    """(dq_y, dq_x) of an FFT of ``shape`` (after padding): Å⁻¹ (rad/px) per pixel."""
    step = 1.0 if pixel_size is None else check_positive(pixel_size, "pixel_size")
    return 2 * np.pi / (np.asarray(shape[-2:], dtype=float) * step)


def high_symmetry_points(lattice) -> dict[str, np.ndarray]:
    """Points of the first Brillouin zone's boundary, as ``(q_y, q_x)`` in the
    lattice's reciprocal units (scan frame).

    Square: X = b1/2, M = (b1 + b2)/2; hexagonal: M = b1/2, K = the zone corner next
    to it; rectangular: X = b1/2, Y = b2/2, S = (b1 + b2)/2; oblique: B1 = b1/2,
    B2 = b2/2. Names are keys ``"X"``, ``"M"``, … (the path runs from Γ).
    """
    b1, b2 = np.asarray(lattice.reciprocal, dtype=float)
    kind = lattice.kind
    if kind == "square":
        return {"X": b1 / 2, "M": (b1 + b2) / 2}
    if kind == "hexagonal":
        # b1, b2 at 60° or 120°: the corner K is (b1 + b2)/3 or (2 b1 + b2)/3
        corner = (b1 + b2) / 3 if b1 @ b2 > 0 else (2 * b1 + b2) / 3
        return {"M": b1 / 2, "K": corner}
    if kind == "rectangular":
        return {"X": b1 / 2, "Y": b2 / 2, "S": (b1 + b2) / 2}
    return {"B1": b1 / 2, "B2": b2 / 2}


def linecut(qimage, *, end=None, angle: float | None = None, q_max: float | None = None,
            q_step=1.0, n_q: int | None = None, width: int = 1
            ) -> tuple[np.ndarray, np.ndarray]:
    """Values of a centred q-space image (or stack) along a line from Γ.

    Parameters
    ----------
    qimage : (..., Y, X) array_like
        Centred q-space image(s), e.g. :func:`magnitude_spectrum` of an (E, Y, X) stack.
    end : (2,) array_like, optional
        The line's end ``(q_y, q_x)`` (Å⁻¹), e.g. a value of
        :func:`high_symmetry_points`. Give ``end`` or ``angle``.
    angle : float, optional
        Direction, degrees counter-clockwise on screen from +q_x.
    q_max : float, optional
        Length of the line with ``angle`` (Å⁻¹); default the inscribed circle's radius.
    q_step : float or (float, float)
        Å⁻¹ per pixel of ``qimage`` (:func:`q_steps`), one or (dq_y, dq_x).
    n_q : int, optional
        Number of samples; default one per pixel along the line.
    width : int
        Lines averaged across the cut, one pixel apart (odd; 1 for a thin cut).

    Returns
    -------
    q : (n_q,) ndarray
        Distance from Γ (Å⁻¹).
    cut : (..., n_q) ndarray
        Bilinear samples, averaged over ``width``; for an (E, Y, X) stack the (E, n_q)
        E(q) image.
    """
    arr = np.asarray(qimage, dtype=float)
    if arr.ndim < 2:
        raise ValueError(f"qimage must be (..., Y, X), got shape {arr.shape}")
    dq = np.broadcast_to(np.asarray(q_step, dtype=float), (2,))
    if not np.all(np.isfinite(dq) & (dq > 0)):
        raise ValueError(f"q_step must be > 0 (Å⁻¹ per pixel), got {q_step!r}")
    width = check_int(width, "width", low=1)
    ny, nx = arr.shape[-2:]
    centre = np.array([ny // 2, nx // 2], dtype=float)
    if (end is None) == (angle is None):
        raise ValueError("give the cut's end=(q_y, q_x) or its angle= (degrees), not both")
    if end is None:
        radius = float(np.min(np.minimum(centre, [ny - 1, nx - 1] - centre) * dq))
        length = radius if q_max is None else check_positive(q_max, "q_max")
        t = np.deg2rad(angle)
        end = length * np.array([-np.sin(t), np.cos(t)])
    end = np.asarray(end, dtype=float).reshape(2)
    length = float(np.hypot(*end))
    if length == 0:
        raise ValueError("end must differ from Γ = (0, 0)")
    pixels = end / dq  # the end in pixels from the centre
    n_q = max(2, int(np.ceil(np.hypot(*pixels))) + 1) if n_q is None else \
        check_int(n_q, "n_q", low=2)
    s = np.linspace(0.0, 1.0, n_q)
    normal = np.array([pixels[1], -pixels[0]]) / np.hypot(*pixels)
    offsets = np.arange(width) - (width - 1) / 2
    coords = [centre[:, None] + np.outer(pixels, s) + o * normal[:, None] for o in offsets]
    flat = arr.reshape(-1, ny, nx)
    cut = np.array([np.mean([ndimage.map_coordinates(p, c, order=1, mode="nearest")
                             for c in coords], axis=0) for p in flat])
    return s * length, cut.reshape(arr.shape[:-2] + (n_q,))


def radial_profile(qimage, *, q_step=1.0, n_q: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthal mean of a centred q-space image (or stack) on rings one q step wide.

    Returns
    -------
    q : (n,) ndarray
        Ring radius (Å⁻¹), up to the inscribed circle.
    profile : (..., n) ndarray
    """
    arr = np.asarray(qimage, dtype=float)
    if arr.ndim < 2:
        raise ValueError(f"qimage must be (..., Y, X), got shape {arr.shape}")
    dq = np.broadcast_to(np.asarray(q_step, dtype=float), (2,))
    ny, nx = arr.shape[-2:]
    yy, xx = np.indices((ny, nx), dtype=float)
    radius = np.hypot((yy - ny // 2) * dq[0], (xx - nx // 2) * dq[1])
    step = float(dq.min())
    inscribed = min(ny // 2 * dq[0], (ny - 1 - ny // 2) * dq[0], nx // 2 * dq[1],
                    (nx - 1 - nx // 2) * dq[1])
    n = int(inscribed / step) + 1 if n_q is None else check_int(n_q, "n_q", low=1)
    bins = np.rint(radius / step).astype(int).ravel()
    keep = bins < n
    counts = np.bincount(bins[keep], minlength=n)
    flat = arr.reshape(-1, ny * nx)
    profile = np.array([np.bincount(bins[keep], p[keep], minlength=n) for p in flat])
    profile = profile / np.maximum(counts, 1)
    return np.arange(n) * step, profile.reshape(arr.shape[:-2] + (n,))
