"""Band structures ε(k) for the six kernel families of the QPI primer.

Units: wavevectors in Å⁻¹, energies in meV, lengths in Å. Every lattice family
carries a lattice constant ``a`` and an in-plane rotation ``theta`` (radians), so a
kernel can take any orientation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

#: ħ²/(2 mₑ) in meV·Å².
HBAR2_2ME = 3809.98

#: Rotational order of each family's kernel (0 = isotropic).  A scalar point defect
#: always gives δρ(r) = δρ(−r), so C3 and C1 need a defect that breaks inversion; the
#: families ``triangular_c3`` and ``tilted`` carry one by default (see
#: :func:`napari_qpi.physics.kernels.default_defect`).
SYMMETRY_ORDER: dict[str, int] = {
    "free_electron": 0,
    "square": 4,
    "rectangular": 2,
    "triangular": 6,
    "triangular_c3": 3,
    "tilted": 1,
}

FAMILIES: tuple[str, ...] = tuple(SYMMETRY_ORDER)

_PARAMETERS: dict[str, tuple[str, ...]] = {
    "free_electron": ("m_eff", "band_bottom"),
    "square": ("t", "tp", "mu"),
    "rectangular": ("tx", "ty", "mu"),
    "triangular": ("t", "mu"),
    "triangular_c3": ("t", "t3", "mu"),
    "tilted": ("t", "tp", "v", "mu"),
}


@dataclass(frozen=True)
class Band:
    """One band ε(k) of a named family.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    params : mapping of str to float
        Family parameters in meV (``m_eff`` in electron masses), see Notes.
    lattice_constant : float
        Lattice constant ``a`` in Å (ignored by ``free_electron``).
    rotation : float
        In-plane rotation of the lattice in radians.

    Notes
    -----
    ============== ==============================================================
    free_electron  ħ²k²/2m* − E₀  (``m_eff``, ``band_bottom`` = E₀)
    square         −2t(cos kₓa + cos k_ya) − 4t′ cos kₓa cos k_ya − μ
    rectangular    −2tₓ cos kₓa − 2t_y cos k_ya − μ
    triangular     −2t Σⱼ cos(k·aⱼ) − μ,  aⱼ at 0°, 120°, 240°
    triangular_c3  triangular − 2t₃ Σⱼ sin(k·aⱼ)
    tilted         square + (−2v sin kₓa), a Rashba-like tilt along x
    ============== ==============================================================
    """

    family: str
    params: Mapping[str, float] = field(default_factory=dict)
    lattice_constant: float = 3.6
    rotation: float = 0.0

    def __post_init__(self) -> None:
        if self.family not in _PARAMETERS:
            raise ValueError(
                f"family={self.family!r} is unknown; choose one of {', '.join(FAMILIES)}"
            )
        missing = set(_PARAMETERS[self.family]) - set(self.params)
        if missing:
            raise ValueError(
                f"params for family {self.family!r} lack {sorted(missing)}; "
                f"it needs {_PARAMETERS[self.family]}"
            )
        if self.lattice_constant <= 0:
            raise ValueError("lattice_constant must be positive (Å)")

    @property
    def symmetry_order(self) -> int:
        """Rotational order n of the family's kernel (0 = isotropic)."""
        return SYMMETRY_ORDER[self.family]

    def energy_scale(self) -> float:
        """A typical energy of the band in meV (hopping or band depth)."""
        p = self.params
        if self.family == "free_electron":
            return float(abs(p["band_bottom"]))
        if self.family == "rectangular":
            return float(max(abs(p["tx"]), abs(p["ty"])))
        return float(abs(p["t"]))

    def dispersion(self, kx: np.ndarray, ky: np.ndarray) -> np.ndarray:
        """Evaluate ε(k) in meV at wavevectors ``kx``, ``ky`` (Å⁻¹)."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        # Rotate k into the lattice frame: rotating the lattice by θ rotates ε by θ.
        qx = c * kx + s * ky
        qy = -s * kx + c * ky
        p, a = self.params, self.lattice_constant
        if self.family == "free_electron":
            return HBAR2_2ME / p["m_eff"] * (qx**2 + qy**2) - p["band_bottom"]
        if self.family in ("square", "tilted"):
            cx, cy = np.cos(qx * a), np.cos(qy * a)
            eps = -2 * p["t"] * (cx + cy) - 4 * p["tp"] * cx * cy - p["mu"]
            if self.family == "tilted":
                eps = eps - 2 * p["v"] * np.sin(qx * a)
            return eps
        if self.family == "rectangular":
            return -2 * p["tx"] * np.cos(qx * a) - 2 * p["ty"] * np.cos(qy * a) - p["mu"]
        # triangular lattices
        eps = -p["mu"]
        for ang in (0.0, 2 * np.pi / 3, 4 * np.pi / 3):
            phase = a * (qx * np.cos(ang) + qy * np.sin(ang))
            eps = eps - 2 * p["t"] * np.cos(phase)
            if self.family == "triangular_c3":
                eps = eps - 2 * p["t3"] * np.sin(phase)
        return eps


def default_band(family: str) -> Band:
    """A physically sensible band for each family.

    ``free_electron`` is Ag(111)-like (m* = 0.4 mₑ, band bottom −65 meV, k_F ≈ 0.083
    Å⁻¹); the lattice families use a = 3.6 Å and hoppings of order 100 meV.  The
    triangular bands sit at μ = 0, where the Fermi contour is clearly hexagonal; near
    the band bottom it is a circle and the kernel is isotropic to within 0.3 %.
    """
    defaults = {
        "free_electron": Band("free_electron", {"m_eff": 0.4, "band_bottom": 65.0}),
        "square": Band("square", {"t": 100.0, "tp": -30.0, "mu": -120.0}, 3.6, 0.0),
        "rectangular": Band("rectangular", {"tx": 100.0, "ty": 45.0, "mu": -150.0}, 3.6),
        "triangular": Band("triangular", {"t": 80.0, "mu": 0.0}, 3.6),
        "triangular_c3": Band("triangular_c3", {"t": 80.0, "t3": 25.0, "mu": 0.0}, 3.6),
        "tilted": Band("tilted", {"t": 100.0, "tp": -20.0, "v": 40.0, "mu": -200.0}, 3.6),
    }
    if family not in defaults:
        raise ValueError(f"family={family!r} is unknown; choose one of {', '.join(FAMILIES)}")
    return defaults[family]


def fermi_velocities(band: Band, energies: np.ndarray, pixel_size: float) -> np.ndarray:
    """Mean |∇ε| (meV·px) on the contour ε = E for each energy, from a 192² grid
    (the band evaluated once for all energies)."""
    m = 192
    k = 2 * np.pi * np.fft.fftfreq(m) / pixel_size
    ky, kx = np.meshgrid(k, k, indexing="ij")
    eps = band.dispersion(kx, ky)
    gy, gx = np.gradient(np.fft.fftshift(eps), k[1] - k[0])
    grad = np.fft.ifftshift(np.hypot(gx, gy)).ravel() / pixel_size
    eps = eps.ravel()
    out = []
    for e in np.atleast_1d(np.asarray(energies, dtype=float)):
        dist = np.abs(eps - e)
        near = dist < np.quantile(dist, 0.02)
        out.append(grad[near].mean())
    return np.asarray(out)
