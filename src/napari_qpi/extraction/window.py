"""The automatic kernel window: as wide as the kernel's signal reaches, no wider.

A window much wider than the kernel gives a blind solver room for noise (a compact 10-px
kernel came back as noise from a 65-px window); one narrower cuts the tail the map holds.
The map's autocorrelation C(τ) = Σ_E Y_E ⋆ Y_E is, for sparse scatterers, the kernel's own
autocorrelation (scaled by the number of scatterers) plus cross terms from pairs of
scatterers, which form a floor of roughly constant size at every lag. The radial RMS
profile of C falls from lag 0 until it reaches that floor; where it does is the radius
the kernel's signal reaches. White noise only touches lag 0, which is skipped.

An instrument's map adds noise that is correlated over long distances (1/f noise, what
is left of a background or of scan-line offsets): its autocorrelation spreads over every
lag and raises the floor, so the profile meets it early (on own instrument draws the
window read a median two thirds of the pattern's extent, a sixth on some). The map's
longest wavelengths (below :data:`HIGHPASS` cycles per map) are left out of the
autocorrelation: they hold that noise and little of a kernel, whose rings sit at 2k_F.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HIGHPASS", "MIN_WINDOW", "estimate_window", "odd", "ring_rms"]

#: Smallest automatic window (px): the core of any kernel plus its first ring.
MIN_WINDOW = 9
#: Chosen on the project's own simulator (four families, compact and default decay
#: lengths, SNR 10 and 2; never on a validation set) so that the window matches the
#: diameter where the true kernel's radial RMS falls below 5 % of its peak;
#: ``tests/test_fit.py::test_window_estimate_follows_the_kernel_extent`` checks it
#: (≥ 65 % of 16 maps within ±30 %, median ratio 0.8–1.25).
FLOOR_RATIO, WIDEN = 1.8, 1.5
#: Wavelengths longer than 1/HIGHPASS of the map (cycles per map: the floor is read over
#: the map's outer lags, so the cut scales with the map) are left out. Chosen on own
#: instrument draws (seeds 43 and 44 of ``make_instrument_cases`` and
#: ``make_class_instrument_cases``, 48 maps; never a validation set): the window's median
#: ratio to the true extent 0.68 → 0.78, within ±30 % on 36 % → 46 % of the maps; on
#: white-noise draws unchanged (median 1.09); ``sbd`` in that window, median tail
#: similarity 0.657 → 0.709 (docs/notes/2026-12-07-window-highpass.md).
HIGHPASS = 6.0
#: Side (px) of the maps HIGHPASS was chosen on; a smaller map keeps wavelengths under
#: HIGHPASS_SIDE / HIGHPASS px (6 cycles of a 30-px map would take out a kernel's rings).
HIGHPASS_SIDE = 128


def odd(size: float) -> int:
    """An odd window (px) for a size: ``2 ⌊size / 2⌋ + 1``."""
    return 2 * int(size / 2) + 1


def ring_rms(image: np.ndarray, rmax: int) -> np.ndarray:
    """RMS of a centred (fftshifted) image over rings of radius 0..rmax px."""
    from ..analysis.linecut import radial_profile  # the package's one azimuthal mean

    power = np.asarray(image, dtype=float) ** 2
    return np.sqrt(radial_profile(power, n_q=int(rmax) + 1)[1])


def estimate_window(observation: np.ndarray, *, maximum: int | None = None,
                    floor_ratio: float = FLOOR_RATIO, widen: float = WIDEN,
                    highpass: float = HIGHPASS) -> int:
    """Odd kernel window (px) from where the map's autocorrelation meets its floor.

    Parameters
    ----------
    observation : (E, H, W) or (H, W) ndarray
        Maps (means are removed here).
    maximum : int, optional
        Largest window; default the largest odd window of the map.
    floor_ratio : float
        The signal reaches the last radius where the profile exceeds ``floor_ratio`` ×
        the floor (the median profile over the outer half of the lags); the last, not
        the first, because a QPI profile has nodes between its rings.
    widen : float
        Window = ``widen`` × that radius (odd).
    highpass : float
        Spatial frequencies below this many cycles per map are left out (0: none); on a
        map smaller than :data:`HIGHPASS_SIDE`, this many cycles per that side.

    Returns
    -------
    int
        Odd window, between :data:`MIN_WINDOW` and ``maximum``.
    """
    y = np.asarray(observation, dtype=float)
    y = y.reshape(-1, *y.shape[-2:])
    y = y - y.mean(axis=(-2, -1), keepdims=True)
    h, w = y.shape[-2:]
    side = min(h, w)
    if maximum is None:
        maximum = side - (1 - side % 2)
    maximum = max(3, min(int(maximum), side - (1 - side % 2)))
    s = (2 * h, 2 * w)  # zero padding: the linear, not circular, autocorrelation
    power = (np.abs(np.fft.rfft2(y, s=s)) ** 2).sum(0)
    if highpass > 0:  # in cycles per map: the padded grid's frequencies × the map's side
        cut = highpass * min(1.0, side / HIGHPASS_SIDE)
        q = np.hypot(np.fft.fftfreq(s[0])[:, None] * h, np.fft.rfftfreq(s[1])[None, :] * w)
        power[q < cut] = 0.0
    auto = np.fft.fftshift(np.fft.irfft2(power, s=s))
    # unbiased: divide by the number of pixel pairs at each lag
    ones = np.abs(np.fft.rfft2(np.ones((h, w)), s=s)) ** 2
    pairs = np.fft.fftshift(np.fft.irfft2(ones, s=s))
    auto = auto / np.maximum(pairs, 1.0)
    cy, cx = s[0] // 2, s[1] // 2
    rmax = side // 2
    crop = auto[cy - rmax: cy + rmax + 1, cx - rmax: cx + rmax + 1]
    prof = ring_rms(crop, rmax)
    floor = float(np.median(prof[rmax // 2:])) if rmax >= 4 else 0.0
    above = np.nonzero(prof[1:] > floor_ratio * floor)[0]
    reach = int(above[-1]) + 1 if len(above) else 1
    window = odd(widen * reach)
    return int(np.clip(window, min(MIN_WINDOW, maximum), maximum))
