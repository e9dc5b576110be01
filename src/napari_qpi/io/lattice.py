"""The atomic lattice in a dI/dV map: Bragg peaks, and drift correction from them.

- :func:`find_bragg_peaks`: isolated, strong peaks of the energy-averaged ``|FFT|`` at
  high ``|q|``, as wavevectors (rad/px) in one half-plane (each stands for its ±q pair);
- :func:`lattice_vectors`: the two shortest non-collinear Bragg wavevectors;
- :func:`correct_drift`: the Lawler–Fujita correction (Lawler et al., Nature 466, 347
  (2010)): the local phase of each Bragg component, low-pass filtered, gives the
  displacement field u(r) with Q_j · u(r) = θ_j(r); every energy is resampled with the
  one field so that the lattice becomes perfectly periodic. Phase unwrapping is
  scikit-image's (:func:`skimage.restoration.unwrap_phase`);
- :func:`lattice_waves`: the lattice's corrugation itself, each Bragg wave with its local
  amplitude and phase (the same demodulation), to subtract from the map.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .._validation import check_int, check_nonnegative, check_positive

__all__ = ["PROMINENCE", "correct_drift", "find_bragg_peaks", "lattice_vectors",
           "lattice_waves"]

#: How far above the local median a Bragg peak's power stands. Chosen on the project's
#: own instrument draws (``python scripts/bragg_choice.py``, 80 maps): 20–60 found two
#: directions on all 42 maps with a lattice and a peak on none of the 38 without; the
#: middle of that range.
PROMINENCE = 40.0


def _stack(data, name: str = "data"):
    from .preprocess import _stack as stack

    return stack(data, name)


def find_bragg_peaks(data, *, n_peaks: int = 8, q_min: float = 0.3,
                     prominence: float = PROMINENCE) -> np.ndarray:
    """Bragg peaks of the atomic lattice, found on the energy-averaged power spectrum.

    The power is summed over 3×3 frequencies first, so a peak that drift has smeared over
    neighbouring frequencies counts whole; a peak is a local maximum (5×5) of the power at
    ``|q| ≥ q_min`` × Nyquist standing ``prominence`` times above the local median
    (15×15): a lattice gives such isolated spikes, QPI gives rings and arcs, white noise
    neither.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    n_peaks : int
        Most peaks returned (a ±q pair counts twice).
    q_min : float
        Smallest ``|q|`` considered, as a fraction of the Nyquist frequency.
    prominence : float
        How far above the local median a peak's (3×3-summed) power must stand.

    Returns
    -------
    (P, 2) ndarray
        Wavevectors (q_y, q_x) in rad/px, strongest first, one of each ±q pair (q_y > 0,
        or q_y = 0 and q_x > 0); empty when there is no lattice.
    """
    n_peaks = check_int(n_peaks, "n_peaks", low=0)
    q_min = check_nonnegative(q_min, "q_min")
    prominence = check_positive(prominence, "prominence")
    out, _ = _stack(data)
    _, ny, nx = out.shape
    out = out - out.mean(axis=(1, 2), keepdims=True)
    raw = np.fft.fftshift((np.abs(np.fft.fft2(out.astype(np.float64))) ** 2).mean(axis=0))
    power = ndimage.uniform_filter(raw, 3, mode="wrap")
    fy = (np.arange(ny) - ny // 2) / ny  # cycles per pixel
    fx = (np.arange(nx) - nx // 2) / nx
    q = np.hypot(*np.meshgrid(fy, fx, indexing="ij")) / 0.5
    background = ndimage.median_filter(power, size=15, mode="wrap")
    # located on the raw power (one pixel per peak), judged on the summed power
    is_peak = (raw == ndimage.maximum_filter(raw, size=5, mode="wrap")) & (q >= q_min)
    is_peak &= power > prominence * np.maximum(background, 1e-300)
    peaks = np.argwhere(is_peak)
    peaks = peaks[np.argsort(power[is_peak])[::-1][:n_peaks]]
    vecs = 2 * np.pi * np.stack([fy[peaks[:, 0]], fx[peaks[:, 1]]], 1) if len(peaks) else \
        np.zeros((0, 2))
    half = (vecs[:, 0] > 0) | ((vecs[:, 0] == 0) & (vecs[:, 1] > 0))
    return vecs[half]


def lattice_vectors(peaks: np.ndarray, image: np.ndarray | None = None) -> np.ndarray | None:
    """The two strongest non-collinear Bragg wavevectors (2, 2), or None; with ``image``
    (Y, X) each is refined to the sub-pixel centroid of its peak in ``|FFT(image)|``."""
    peaks = np.asarray(peaks, float).reshape(-1, 2)
    if len(peaks) < 2:
        return None
    first = peaks[0]
    for other in peaks[1:]:
        cross = abs(first[0] * other[1] - first[1] * other[0])
        if cross > 0.2 * np.linalg.norm(first) * np.linalg.norm(other):  # > ~11°
            q = np.stack([first, other])
            if image is not None:
                image = np.asarray(image, float)
                q = np.stack([_refine(image - image.mean(), qj) for qj in q])
            return q
    return None


def _refine(image: np.ndarray, q: np.ndarray) -> np.ndarray:
    """q moved to the centroid of |FFT| within 1 FFT pixel of it (sub-pixel)."""
    ny, nx = image.shape
    f = np.abs(np.fft.fft2(image))
    fy, fx = np.fft.fftfreq(ny) * 2 * np.pi, np.fft.fftfreq(nx) * 2 * np.pi
    iy, ix = int(np.argmin(np.abs(fy - q[0]))), int(np.argmin(np.abs(fx - q[1])))
    w = f[np.ix_([(iy + d) % ny for d in (-1, 0, 1)], [(ix + d) % nx for d in (-1, 0, 1)])]
    w = w**2
    dy = (w.sum(1) * np.array([-1, 0, 1])).sum() / w.sum()
    dx = (w.sum(0) * np.array([-1, 0, 1])).sum() / w.sum()
    return np.array([q[0] + dy * 2 * np.pi / ny, q[1] + dx * 2 * np.pi / nx])


def displacement_field(image: np.ndarray, q: np.ndarray, *, smoothing: float) -> np.ndarray:
    """(2, Y, X) displacement u(r) (px) with q_j · u(r) = θ_j(r), the lattice's phase."""
    from skimage.restoration import unwrap_phase

    ny, nx = image.shape
    yy, xx = np.mgrid[:ny, :nx].astype(float)
    theta = []
    for qj in q:
        demod = image * np.exp(-1j * (qj[0] * yy + qj[1] * xx))
        demod = (ndimage.gaussian_filter(demod.real, smoothing)
                 + 1j * ndimage.gaussian_filter(demod.imag, smoothing))
        phase = unwrap_phase(np.angle(demod))
        theta.append(phase - phase[ny // 2, nx // 2])  # a global shift is no drift
    theta = np.stack(theta)  # (2, Y, X)
    u = np.linalg.solve(q, theta.reshape(2, -1))
    return u.reshape(2, ny, nx)


def correct_drift(data, *, peaks: np.ndarray | None = None,
                  smoothing: float | None = None, reference: int | None = None):
    """Lawler–Fujita drift correction: one displacement field, applied to every energy.

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    peaks : (P, 2) array_like, optional
        Bragg wavevectors (rad/px), e.g. from :func:`find_bragg_peaks`; default found
        here. The two strongest non-collinear ones are used.
    smoothing : float, optional
        Gaussian low-pass (px) of the demodulated lattice; default three lattice
        periods (the field varies slower than the lattice, faster than the map).
    reference : int, optional
        The slice whose lattice defines the field; default the energy average.

    Returns
    -------
    ndarray
        Same shape as ``data``: each slice resampled (cubic) at r − u(r), so that its
        lattice is periodic with the refined Bragg wavevectors.

    Raises
    ------
    ValueError
        When fewer than two non-collinear Bragg peaks are found (no lattice to correct
        against): give ``peaks`` or skip drift correction.
    """
    out, was_2d = _stack(data)
    ref = out.mean(axis=0) if reference is None else out[check_int(
        reference, "reference", low=0, high=len(out) - 1)]
    ref = ref - ref.mean()
    found = find_bragg_peaks(out) if peaks is None else np.asarray(peaks, float)
    q = lattice_vectors(found, ref)
    if q is None:
        raise ValueError("correct_drift needs two non-collinear Bragg peaks and found "
                         f"{len(found)}; pass peaks=… or skip drift correction")
    period = 2 * np.pi / float(np.linalg.norm(q, axis=1).min())
    sigma = 3 * period if smoothing is None else check_positive(smoothing, "smoothing")
    u = displacement_field(ref, q, smoothing=sigma)
    ny, nx = ref.shape
    yy, xx = np.mgrid[:ny, :nx].astype(float)
    coords = np.stack([yy - u[0], xx - u[1]])
    for i, s in enumerate(out):
        out[i] = ndimage.map_coordinates(s.astype(np.float64), coords, order=3,
                                         mode="reflect")
    return out[0] if was_2d else out


def lattice_waves(data, peaks, *, radius: float = 1.5) -> np.ndarray:
    """The lattice's corrugation in each slice: every Bragg wave with its local amplitude
    and phase.

    Each wave is demodulated at its wavevector ``q`` (refined to the sub-pixel centroid
    of its peak in the energy average), low-passed with a Gaussian and modulated back:
    ``2 Re(e^{iq·r} G∗(y e^{-iq·r}) / G∗1)``, the Gaussian normalised by how much of it
    lies inside the map. Subtracting it removes what an FFT notch of the same width
    (``radius`` FFT pixels, a Gaussian of ``n / (2π radius)`` px in real space) removes,
    without the notch's flaw: a lattice whose period does not divide the map is not
    periodic on the FFT's torus, its peak leaks along both axes past any notch, and a
    fitted kernel learns the leftover lattice (it then predicts held-out pixels better,
    since every scatterer sits on the lattice).

    Parameters
    ----------
    data : (E, Y, X) or (Y, X) array_like
    peaks : (P, 2) array_like
        Bragg wavevectors (rad/px), one per ±q pair (:func:`find_bragg_peaks`).
    radius : float
        Width of the removed band around each peak, in FFT pixels.

    Returns
    -------
    ndarray
        The corrugation, float64, the shape of ``data``.
    """
    from scipy import fft

    radius = check_positive(radius, "radius")
    y, was_2d = _stack(data)  # a fresh copy
    y = y.astype(np.float64, copy=False)
    _, ny, nx = y.shape
    waves = np.zeros_like(y)
    try:
        peaks = np.asarray(peaks, float).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError(f"peaks must be (P, 2) wavevectors (q_y, q_x) in rad/px, e.g. "
                         f"from find_bragg_peaks; got {np.shape(peaks)}") from None
    if not len(peaks):
        return waves[0] if was_2d else waves
    sigma = (ny / (2 * np.pi * radius), nx / (2 * np.pi * radius))
    # the Gaussian by FFT on a zero-padded grid (no wrap-around: the map's edges see
    # only the map), 4 σ on each side, as scipy's gaussian_filter truncates; by hand
    # since gaussian_filter's direct sums cost ~8σ per pixel, 27 px wide on a 256² map
    pad = [int(np.ceil(4 * s)) for s in sigma]
    shape = (fft.next_fast_len(ny + 2 * pad[0]), fft.next_fast_len(nx + 2 * pad[1]))
    wy = fft.fftfreq(shape[0])[:, None] * 2 * np.pi
    wx = fft.fftfreq(shape[1])[None, :] * 2 * np.pi
    gauss = np.exp(-0.5 * ((sigma[0] * wy) ** 2 + (sigma[1] * wx) ** 2))

    def smooth(z):  # (…, ny, nx) → G ∗ z, zero outside the map
        spec = fft.fft2(z, s=shape, axes=(-2, -1), workers=-1) * gauss
        spec = fft.ifft2(spec, axes=(-2, -1), workers=-1)
        # the padding sits after the map in the FFT's frame: the kernel is centred, so
        # the map's pixels are the first ny × nx
        return spec[..., :ny, :nx]

    weight = smooth(np.ones((ny, nx))).real
    ref = y.mean(axis=0)
    yy, xx = np.mgrid[:ny, :nx].astype(float)
    for q in peaks:
        q = _refine(ref - ref.mean(), q)
        carrier = np.exp(1j * (q[0] * yy + q[1] * xx))
        local = smooth(y * np.conj(carrier)) / weight
        waves += 2 * (local * carrier).real
    return waves[0] if was_2d else waves
