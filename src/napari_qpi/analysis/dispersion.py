"""Band dispersion from QPI: the wavevector q(E) at each energy, and a band fitted to it.

For intraband backscattering q = 2k (``q_per_k``), so a ring of radius q(E) in the
kernel's ``|FFT|`` traces the band k(E). Two ways to read q(E):

- :func:`ring_wavevectors`: the maximum of each row of an E(q) cut (a linecut or a
  radial profile). Simple and works on observations; on a kernel window of a few
  wavelengths it reads a few % above 2k_F (the 2-D backscattering edge is one-sided
  and the window's finite size widens it towards high q).
- :func:`friedel_wavevectors`: a fit of the kernel's Friedel oscillation in real
  space, ``A cos(q r + φ) exp(−r/L) / r`` (the 2-D asymptote of G0(r)², Crommie, Lutz
  & Eigler, Nature 363, 524 (1993)), which the window does not bias.

:func:`fit_dispersion` fits k(E) (the energies are exact, the wavevectors are what is
measured) with :func:`scipy.optimize.curve_fit`: a parabolic band
E = ħ²k²/2m* − E₀ (the convention of :mod:`napari_qpi.physics.bands`: E₀ > 0 is the
band bottom's depth below the Fermi level) or a linear one E = ħv_F (k − k_F).
Uncertainties are the square roots of the covariance's diagonal, scaled by the scatter
of the points about the fit. Units: meV, Å⁻¹, m* in electron masses.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from .._validation import check_choice, check_positive
from ..physics.bands import HBAR2_2ME
from .linecut import magnitude_spectrum, q_steps, radial_profile

__all__ = ["Dispersion", "fit_dispersion", "fit_kernel_dispersion",
           "friedel_wavevectors", "ring_wavevectors"]

#: m/s per meV·Å of ħv: 1e-13 eV·m / ħ (6.582119569e-16 eV·s).
MS_PER_MEV_A = 1e-13 / 6.582119569e-16


@dataclass(frozen=True)
class Dispersion:
    """A band fitted to q(E).

    Attributes
    ----------
    model : str
        ``"parabolic"`` or ``"linear"``.
    params, errors : dict of str to float
        Parabolic: ``m_eff`` (mₑ), ``band_bottom`` (meV, E₀ > 0 below E_F). Linear:
        ``k_F`` (Å⁻¹), ``hbar_v_F`` (meV·Å). Both also carry the other's derived
        quantities at E = 0 where they exist (``k_F``, ``hbar_v_F``, ``v_F`` in m/s).
    q_per_k : float
        q = ``q_per_k`` · k (2 for backscattering).
    """

    model: str
    params: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    q_per_k: float = 2.0

    def energy(self, q) -> np.ndarray:
        """E (meV) of the fitted band at scattering vectors ``q`` (Å⁻¹), to draw the
        fit over an E(q) image."""
        k = np.asarray(q, dtype=float) / self.q_per_k
        p = self.params
        if self.model == "parabolic":
            return HBAR2_2ME / p["m_eff"] * k**2 - p["band_bottom"]
        return p["hbar_v_F"] * (k - p["k_F"])

    def as_dict(self) -> dict:
        return {"model": self.model, "params": dict(self.params),
                "errors": dict(self.errors), "q_per_k": self.q_per_k}


def ring_wavevectors(q, cut, *, q_min: float = 0.0, q_max: float | None = None
                     ) -> np.ndarray:
    """|q| of each row's maximum within ``[q_min, q_max]``, refined between samples by
    a parabola through it and its neighbours; NaN where the maximum is at the range's
    edge (no ring inside it).

    Parameters
    ----------
    q : (n,) array_like
        The cut's q axis (Å⁻¹).
    cut : (E, n) array_like
        An E(q) image (:func:`~napari_qpi.analysis.linecut.linecut` or
        :func:`~napari_qpi.analysis.linecut.radial_profile` of a stack's ``|FFT|``).
    q_min, q_max : float
        The range searched: above q = 0's peak (a map's background), below the Bragg
        peaks.

    Returns
    -------
    (E,) ndarray
    """
    q = np.asarray(q, dtype=float)
    cut = np.atleast_2d(np.asarray(cut, dtype=float))
    if cut.shape[-1] != q.size:
        raise ValueError(f"cut has {cut.shape[-1]} q samples but q has {q.size}")
    q_max = np.inf if q_max is None else q_max
    cols = np.flatnonzero((np.abs(q) >= q_min) & (np.abs(q) <= q_max))
    if cols.size < 3:
        raise ValueError(f"q_min={q_min}, q_max={q_max} leave {cols.size} samples; "
                         "widen the range")
    out = np.full(cut.shape[0], np.nan)
    for e, row in enumerate(cut):
        j = cols[np.argmax(row[cols])]
        if j in (cols[0], cols[-1]):
            continue
        a, b, c = row[j - 1:j + 2]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
        out[e] = abs(q[j] + shift * (q[j + 1] - q[j]))
    return out


def _friedel(r, amplitude, q, phase, length):
    return amplitude * np.cos(q * r + phase) * np.exp(-r / length) / r


def friedel_wavevectors(kernel, pixel_size: float, *, guess=None,
                        r_min: float | None = None, damping: bool = True
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The Friedel-oscillation wavevector q = 2k of each slice of an isotropic kernel.

    Every pixel at ``r_min ≤ r ≤`` the inscribed radius enters a least-squares fit of
    ``A cos(q r + φ) exp(−r/L) / r`` (four starting phases, the best kept).

    Parameters
    ----------
    kernel : (E, k, k) or (k, k) array_like
        Kernel stack, the scatterer at the centre pixel.
    pixel_size : float
        Å per pixel.
    guess : (E,) array_like, optional
        Starting q per energy (Å⁻¹); default the ring of the zero-padded ``|FFT|``.
    r_min : float, optional
        Innermost radius fitted (Å); default three-quarters of a wavelength 2π/q, at
        least 4 px, past the defect's core where the asymptote does not hold.
    damping : bool
        Take the decay off the wavevector: with a lifetime broadening η the band
        holds at the complex wavevector, ε(k̃) = E + iη, and the oscillation's q is
        Re(q̃) > 2k(E); ``sqrt(q² − 1/L²)`` = sqrt(Re q̃²) is the band's. With the
        simulator's default η (20 meV) this takes the bias near the band bottom
        from 5 % to 1 %.

    Returns
    -------
    q, q_err : (E,) ndarray
        Å⁻¹; NaN where the fit failed.
    """
    pixel_size = check_positive(pixel_size, "pixel_size")
    arr = np.asarray(kernel, dtype=float)
    arr = arr[None] if arr.ndim == 2 else arr
    if arr.ndim != 3 or min(arr.shape[1:]) < 9:
        raise ValueError(f"kernel must be (E, k, k) or (k, k) with k ≥ 9, got {arr.shape}")
    if guess is None:
        spectrum = magnitude_spectrum(arr, window=False, pad=4)
        qq, profile = radial_profile(spectrum, q_step=q_steps(spectrum.shape, pixel_size))
        guess = ring_wavevectors(qq, profile, q_min=2 * qq[1] * 4)
    guess = np.broadcast_to(np.asarray(guess, dtype=float), (len(arr),))
    ny, nx = arr.shape[1:]
    yy, xx = np.indices((ny, nx), dtype=float)
    r = np.hypot(yy - ny // 2, xx - nx // 2).ravel() * pixel_size
    r_max = min(ny // 2, nx // 2) * pixel_size
    q_out, err_out = np.full(len(arr), np.nan), np.full(len(arr), np.nan)
    for e, (plane, q0) in enumerate(zip(arr, guess)):
        if not np.isfinite(q0) or q0 <= 0:
            continue
        inner = max(0.75 * 2 * np.pi / q0, 4 * pixel_size) if r_min is None else r_min
        keep = (r >= inner) & (r <= r_max)
        x, y = r[keep], plane.ravel()[keep]
        best = None
        bounds = ([-np.inf, 0.5 * q0, -np.inf, pixel_size],
                  [np.inf, 2 * q0, np.inf, 1e3 * r_max])
        for phase in np.linspace(0, 2 * np.pi, 4, endpoint=False):
            start = [y.std() * x.mean(), q0, phase, r_max]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", OptimizeWarning)
                    p, cov = curve_fit(_friedel, x, y, p0=start, bounds=bounds)
            except (RuntimeError, ValueError):
                continue
            cost = np.sum((_friedel(x, *p) - y) ** 2)
            if best is None or cost < best[0]:
                best = (cost, p, cov)
        if best is None or not np.isfinite(best[2][1, 1]):
            continue
        q, length = best[1][1], best[1][3]
        if damping and q * length > 1:
            # ε(k̃) = E + iη: the band holds for the complex q + i/L, whose real part
            # broadening pushes above the band's q; Re(q̃²) = q² − 1/L² is the band's
            q_out[e] = np.sqrt(q**2 - length**-2)
            err_out[e] = np.sqrt(best[2][1, 1]) * q / q_out[e]
        else:
            q_out[e], err_out[e] = q, np.sqrt(best[2][1, 1])
    return q_out, err_out


def fit_dispersion(energies, q, q_err=None, *, model: str = "parabolic",
                   q_per_k: float = 2.0) -> Dispersion:
    """Fit a band to scattering vectors q(E).

    Parameters
    ----------
    energies : (E,) array_like
        meV.
    q : (E,) array_like
        Scattering vector at each energy (Å⁻¹); NaN entries are left out.
    q_err : (E,) array_like, optional
        Their uncertainties (relative weights; the covariance is scaled by the fit's
        scatter).
    model : {"parabolic", "linear"}
    q_per_k : float
        q = ``q_per_k`` · k: 2 for intraband backscattering (the 2k_F ring).

    Returns
    -------
    Dispersion

    Examples
    --------
    >>> e = np.linspace(-40.0, 60.0, 6)
    >>> q = 2 * np.sqrt(0.4 * (e + 65.0) / 3809.98)  # Ag(111): m* = 0.4, E₀ = 65 meV
    >>> fit = fit_dispersion(e, q)
    >>> round(fit.params["m_eff"], 3), round(fit.params["band_bottom"], 1)
    (0.4, 65.0)
    """
    check_choice(model, "model", ("parabolic", "linear"))
    q_per_k = check_positive(q_per_k, "q_per_k")
    e = np.asarray(energies, dtype=float).ravel()
    k = np.asarray(q, dtype=float).ravel() / q_per_k
    if e.shape != k.shape:
        raise ValueError(f"energies ({e.size}) and q ({k.size}) must have one value each")
    sigma = None if q_err is None else np.asarray(q_err, dtype=float).ravel() / q_per_k
    ok = np.isfinite(e) & np.isfinite(k) & (k > 0)
    if sigma is not None:
        ok &= np.isfinite(sigma) & (sigma > 0)
    if ok.sum() < 3:
        raise ValueError(f"fit_dispersion needs ≥ 3 energies with a finite q, got "
                         f"{int(ok.sum())}; check the q range of the ring search")
    e, k = e[ok], k[ok]
    sigma = None if sigma is None else sigma[ok]
    if model == "parabolic":
        slope, intercept = np.polyfit(k**2, e, 1)  # E linear in k²: the start
        if slope <= 0:
            raise ValueError("q(E) does not grow with energy: no electron-like parabola; "
                             "try model='linear'")

        def k_of_e(en, m_eff, band_bottom):
            return np.sqrt(np.clip(m_eff * (en + band_bottom) / HBAR2_2ME, 0, None))

        p, cov = curve_fit(k_of_e, e, k, p0=[HBAR2_2ME / slope, -intercept], sigma=sigma)
        err = np.sqrt(np.diag(cov))
        params = {"m_eff": p[0], "band_bottom": p[1]}
        errors = {"m_eff": err[0], "band_bottom": err[1]}
        if p[1] > 0:  # the band crosses E = 0
            kf = np.sqrt(p[0] * p[1] / HBAR2_2ME)
            params |= {"k_F": kf, "hbar_v_F": 2 * HBAR2_2ME * kf / p[0]}
    else:
        slope, intercept = np.polyfit(e, k, 1)
        p, cov = curve_fit(lambda en, k_f, v: k_f + en / v, e, k,
                           p0=[intercept, 1 / slope if slope else 1e3], sigma=sigma)
        err = np.sqrt(np.diag(cov))
        params, errors = {"k_F": p[0], "hbar_v_F": p[1]}, {"k_F": err[0], "hbar_v_F": err[1]}
    if "hbar_v_F" in params:
        params["v_F"] = params["hbar_v_F"] * MS_PER_MEV_A
    if "hbar_v_F" in errors:
        errors["v_F"] = errors["hbar_v_F"] * MS_PER_MEV_A
    return Dispersion(model, {n: float(v) for n, v in params.items()},
                      {n: float(v) for n, v in errors.items()}, q_per_k)


def fit_kernel_dispersion(kernel, energies, pixel_size: float, *,
                          model: str = "parabolic", method: str = "friedel"
                          ) -> tuple[Dispersion, np.ndarray, np.ndarray]:
    """q(E) read from an isotropic kernel stack, and a band fitted to it.

    ``method="friedel"`` fits the real-space oscillation (:func:`friedel_wavevectors`);
    ``"peak"`` takes the ring's maximum in the zero-padded ``|FFT|``'s radial profile
    (:func:`ring_wavevectors`), a few % high on small windows.

    Returns
    -------
    (Dispersion, q, q_err)
        The fit and the (E,) wavevectors (Å⁻¹) it was fitted to (q_err NaN for
        ``"peak"``).
    """
    check_choice(method, "method", ("friedel", "peak"))
    arr = np.asarray(kernel, dtype=float)
    if method == "friedel":
        q, q_err = friedel_wavevectors(arr, pixel_size)
        return fit_dispersion(energies, q, q_err, model=model), q, q_err
    spectrum = magnitude_spectrum(arr, window=False, pad=4)
    qq, profile = radial_profile(spectrum, q_step=q_steps(spectrum.shape, pixel_size))
    q = ring_wavevectors(qq, profile, q_min=8 * qq[1])
    return fit_dispersion(energies, q, model=model), q, np.full_like(q, np.nan)
