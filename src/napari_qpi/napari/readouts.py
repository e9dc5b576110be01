"""Physics read-outs of kernels and maps: radial profile, linecut, E(q) dispersion.

Plain numpy on arrays, in physical units when the pixel size is known (Å, Å⁻¹), in
pixels otherwise; the read-out dock (:mod:`.plots_widget`) draws them. The E(q) cut is
what a QPI physicist reads first: |FFT| of each energy slice along one q-direction (or
averaged over directions), energy on the vertical axis, so a band shows as a curve and
a free-electron surface state as the parabola 2k_F(E).
"""

from __future__ import annotations

import numpy as np


def _step(pixel_size: float | None) -> float:
    return float(pixel_size) if pixel_size else 1.0


def radial_profile(image: np.ndarray, pixel_size: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthal mean of a (k, k) kernel around its centre pixel, in real space: the
    package's one azimuthal mean (:func:`napari_qpi.analysis.radial_profile`) with the
    pixel size as its step.

    Returns
    -------
    r : (n,) ndarray
        Distance from the scatterer, Å (pixels without ``pixel_size``).
    profile : (n,) ndarray
        Mean of the kernel on rings of one pixel width.
    """
    from ..analysis.linecut import radial_profile as rings

    return rings(np.asarray(image, dtype=float), q_step=_step(pixel_size))


def linecut(image: np.ndarray, angle: float = 0.0, pixel_size: float | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Values of a (k, k) image (or a stack of them) along a line through its centre at
    ``angle`` degrees (counter-clockwise on screen from +x), both sides of the centre:
    the package's one linecut (:func:`napari_qpi.analysis.linecut`) towards ``angle``
    and ``angle + 180``.

    Returns
    -------
    r : (m,) ndarray
        Signed distance from the centre, Å (pixels without ``pixel_size``).
    values : (..., m) ndarray
        Bilinear samples of ``image``.
    """
    from ..analysis.linecut import linecut as cut

    image, step = np.asarray(image, dtype=float), _step(pixel_size)
    r, ahead = cut(image, angle=float(angle), q_step=step)
    _, behind = cut(image, angle=float(angle) + 180.0, q_step=step)
    return (np.concatenate([-r[:0:-1], r]),
            np.concatenate([behind[..., :0:-1], ahead], axis=-1))


def qspace(stack: np.ndarray, window: bool = True) -> np.ndarray:
    """|FFT| of each slice of a (Y, X) map or (E, Y, X) stack, q = 0 on the centre pixel.

    Each slice's mean is removed and (``window``) a Hann window applied, so a map's
    edges do not draw a cross through q = 0; a kernel, which decays, needs none. The
    package's one spectrum, :func:`napari_qpi.analysis.linecut.magnitude_spectrum`.
    """
    from ..analysis.linecut import magnitude_spectrum

    return magnitude_spectrum(stack, window=window)


#: Symmetrisations offered for a q-space image: name → (rotation order, mirror).
SYMMETRIES = {"none": (1, False), "mirror": (1, True), "C2": (2, False),
              "C3": (3, False), "C4": (4, False), "C6": (6, False),
              "C4 + mirror": (4, True), "C6 + mirror": (6, True)}


def symmetrise(image: np.ndarray, order: int = 1, mirror: bool = False) -> np.ndarray:
    """Average a centred (q-space) image over C_order rotations (and a mirror).

    The read-out dock's choice (:data:`SYMMETRIES`) passed to
    :func:`napari_qpi.analysis.symmetry.symmetrize`, the one symmetrisation of the
    package; the mirror is x → −x (about the q_y axis). A QPI pattern carries the
    crystal's symmetry, so averaging raises the signal of weak scattering vectors above
    the speckle of a finite map.
    """
    from ..analysis.symmetry import symmetrize

    return symmetrize(image, order, mirror=mirror, axis_angle=90.0)


def q_axis(n: int, pixel_size: float | None = None) -> float:
    """The q step (Å⁻¹ per pixel, rad/px without ``pixel_size``) of an n-point FFT."""
    return 2 * np.pi / (n * _step(pixel_size))


def dispersion(stack: np.ndarray, angle: float | None = 0.0,
               pixel_size: float | None = None, *, transform: bool = True,
               window: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The E(q) cut of an (E, Y, X) stack: |FFT| along one q-direction for every energy.

    Parameters
    ----------
    stack : (E, Y, X) or (Y, X) array_like
        Kernels or maps in real space (or already in q-space with ``transform=False``).
    angle : float or None
        Direction of the cut in degrees from +q_x; None averages over all directions
        (for a ring, the cleanest E(q)).
    pixel_size : float, optional
        Å per pixel of the real-space stack.
    transform : bool
        Take the |FFT| first (False: ``stack`` is already a centred |FFT|).
    window : bool
        Hann-window each slice before the FFT (maps: yes; kernels: no).

    Returns
    -------
    q : (m,) ndarray
        Wavevector, Å⁻¹ (rad/px without ``pixel_size``); signed along a direction,
        ≥ 0 for the average.
    cut : (E, m) ndarray
        |FFT| at each energy and q.
    """
    stack = np.asarray(stack, dtype=float)
    stack = stack[None] if stack.ndim == 2 else stack
    spectra = qspace(stack, window) if transform else stack
    h, w = spectra.shape[-2:]
    dq = q_axis(min(h, w), pixel_size)
    if h != w:  # a square q grid: crop the larger axis to the smaller
        m = min(h, w)
        spectra = spectra[..., (h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
    if angle is None:
        profiles = [radial_profile(s)[1] for s in spectra]
        cut = np.asarray(profiles)
        return np.arange(cut.shape[-1]) * dq, cut
    t, cut = linecut(spectra, angle)
    return t * dq, cut


def ring_radius(q: np.ndarray, cut: np.ndarray, q_min: float = 0.0, *,
                contrast: float = 0.5) -> np.ndarray:
    """|q| of the strongest response beyond ``q_min`` at each energy (a ring's radius),
    refined between grid points by a parabola through it and its neighbours.

    The strongest response must be a peak: higher than the point before it, not lower
    than the one after, and standing out of the row (``(peak - median) / peak ≥
    contrast``: twice the row's median). Where it is the falling shoulder of q = 0 (a
    map's slow background, as on a small Nanonis grid), the axis' end or a speck of
    noise, the energy has no ring: NaN, drawn as nothing.
    """
    q = np.asarray(q, dtype=float)
    cut = np.atleast_2d(np.asarray(cut, dtype=float))
    out = np.full(cut.shape[0], np.nan)
    columns = np.flatnonzero(_beyond(q, q_min))
    for e, row in enumerate(cut):
        j = columns[np.argmax(row[columns])]
        if not (0 < j < q.size - 1 and row[j - 1] < row[j] >= row[j + 1]
                and row[j] - np.median(row) >= contrast * abs(row[j])):
            continue
        a, b, c = row[j - 1:j + 2]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
        out[e] = abs(q[j] + shift * (q[j + 1] - q[j]))
    return out


def _beyond(q: np.ndarray, q_min: float) -> np.ndarray:
    """Columns of a cut at |q| > ``q_min``: the q = 0 peak (a map's mean, its slow
    background) is no signal, and would set every scale alone."""
    keep = np.abs(np.asarray(q, dtype=float)) > q_min
    return keep if keep.any() else np.ones(np.shape(q), dtype=bool)


def normalise(q: np.ndarray, cut: np.ndarray, q_min: float = 0.0) -> np.ndarray:
    """Each energy's row of an E(q) cut divided by its largest value beyond ``q_min``.

    dI/dV changes by orders of magnitude across a bias sweep: on one colour scale the
    strong energies saturate and the weak ones are black. Normalised, every row peaks
    at 1 where its ring is (values inside ``q_min`` may exceed 1).
    """
    cut = np.asarray(cut, dtype=float)
    peak = cut[:, _beyond(q, q_min)].max(axis=-1, keepdims=True)
    return cut / np.where(peak > 0, peak, 1.0)


def signal_range(q: np.ndarray, cut: np.ndarray, q_min: float = 0.0,
                 fraction: float = 0.2, margin: float = 1.3, *,
                 quantile: float = 0.9, contrast: float = 0.5) -> float:
    """The |q| up to which an E(q) cut holds signal, to zoom its axis on.

    At each energy the signal is where the row rises above its floor (median over q)
    by ``fraction`` of its peak beyond ``q_min``. The range is the ``quantile`` over
    energies of the farthest such q, times ``margin``, plus one q step, at most the
    axis' end. Only rows whose peak stands out (``(peak - floor) / peak ≥ contrast``,
    i.e. twice the floor) take part, and the quantile is not the maximum, so a few
    energies of pure noise (a grid's rows near the Fermi level) do not widen the axis
    back to its end.

    Returns
    -------
    float
        Å⁻¹ (rad/px without a pixel size), > 0.
    """
    q = np.asarray(q, dtype=float)
    cut = np.atleast_2d(np.asarray(cut, dtype=float))
    keep = _beyond(q, q_min)
    floor = np.median(cut, axis=-1, keepdims=True)
    peak = cut[:, keep].max(axis=-1, keepdims=True)
    above = (cut - floor > fraction * (peak - floor)) & keep & (peak > floor)
    dq = float(np.mean(np.abs(np.diff(q)))) if q.size > 1 else 1.0
    end = float(np.abs(q).max()) if q.size else 1.0
    rows = above.any(axis=1)
    clear = rows & ((peak - floor) >= contrast * np.abs(peak)).ravel()
    rows = clear if clear.any() else rows
    if not rows.any():
        return end
    farthest = np.asarray([np.abs(q)[a].max() for a in above[rows]])
    return min(end, margin * float(np.quantile(farthest, quantile)) + dq)
