"""Single-defect QPI kernels by the T-matrix (and its Born limit).

The bare Green's function G0(k, ω) = 1 / (ω + iη − ε(k)) is evaluated on an M×M grid
of the image's own wavevectors (k = 2π·fftfreq(M) / pixel_size) and transformed to real
space by an inverse FFT; M is chosen well above the kernel window so the periodic images
of the grid do not wrap into it.  For lattice families, each propagator from a lattice
site to the continuous tip position carries a Gaussian Wannier form factor, which turns
the lattice-site comb into the smooth envelope an STM tip sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from .bands import Band

#: Real-space width of the Wannier orbital as a fraction of the lattice constant.
WANNIER_WIDTH = 0.45


@dataclass(frozen=True)
class Defect:
    """A defect: one or more lattice sites with scattering potentials.

    Parameters
    ----------
    strength : float
        Potential V of the defect in meV (positive: repulsive).
    offsets : tuple of (float, float)
        Site positions (row, col) in units of the lattice constant, rotated with the
        band; ``((0, 0),)`` is a point defect.
    weights : tuple of float
        Relative potential of each site (V_i = strength · weight_i).
    """

    strength: float = 300.0
    offsets: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    weights: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if len(self.offsets) != len(self.weights) or not self.offsets:
            raise ValueError("Defect needs one weight per site offset, at least one site")

    def sites(self, band: Band, pixel_size: float) -> tuple[np.ndarray, np.ndarray]:
        """Site offsets in pixels (S, 2) and potentials in meV (S,)."""
        a = 1.0 if band.family == "free_electron" else band.lattice_constant
        off = np.asarray(self.offsets, dtype=float) * a / pixel_size
        c, s = np.cos(band.rotation), np.sin(band.rotation)
        # offsets are (row, col) = (y, x); rotate (x, y) by θ like the band
        x, y = off[:, 1], off[:, 0]
        rot = np.stack([s * x + c * y, c * x - s * y], axis=1)
        return rot, self.strength * np.asarray(self.weights, dtype=float)

    def with_strength(self, strength: float) -> Defect:
        """The same geometry with another potential."""
        return Defect(strength, self.offsets, self.weights)


def default_defect(band: Band, strength: float = 300.0) -> Defect:
    """The defect each family is simulated with by default.

    A scalar point defect gives a centrosymmetric kernel whatever the band, so the
    C3 family uses a trimer on a hollow site and the C1 family an asymmetric dimer.
    """
    if band.family == "triangular_c3":
        r = 1 / np.sqrt(3)
        ang = np.deg2rad([90.0, 210.0, 330.0])
        offsets = tuple((float(r * np.sin(t)), float(r * np.cos(t))) for t in ang)
        return Defect(strength / 3, offsets, (1.0, 1.0, 1.0))
    if band.family == "tilted":
        return Defect(strength, ((0.0, 0.0), (0.0, 1.0)), (1.0, 0.45))
    return Defect(strength)


def grid_size(extent: int) -> int:
    """FFT-friendly grid size ≥ ``extent``."""
    return int(sfft.next_fast_len(int(extent), real=False))


def _kgrid(m: int, pixel_size: float) -> tuple[np.ndarray, np.ndarray]:
    k = 2 * np.pi * np.fft.fftfreq(m) / pixel_size
    return np.meshgrid(k, k, indexing="ij")  # (ky, kx)


class GreensFunction:
    """G0 on an M×M grid for a band at several energies.

    Parameters
    ----------
    band : Band
    energies : (E,) array_like
        Energies ω in meV.
    m : int
        Grid size in pixels.
    pixel_size : float
        Å per pixel.
    broadening : float
        η in meV; sets the decay length of the oscillations.
    """

    def __init__(
        self,
        band: Band,
        energies: np.ndarray,
        m: int,
        pixel_size: float,
        broadening: float,
    ) -> None:
        self.m = m
        self.pixel_size = pixel_size
        ky, kx = _kgrid(m, pixel_size)
        self.ky, self.kx = ky, kx
        eps = band.dispersion(kx, ky)
        w = np.asarray(energies, dtype=float)[:, None, None]
        self.gk = 1.0 / (w + 1j * broadening - eps[None])  # (E, M, M)
        if band.family == "free_electron":
            self.form = np.ones_like(eps)
            self.cell = 1.0
        else:
            sigma = WANNIER_WIDTH * band.lattice_constant
            self.form = np.exp(-0.5 * (kx**2 + ky**2) * sigma**2)
            # unit-cell area in px²: turns the smooth envelope of the lattice comb
            # G0(r) back into a per-site amplitude
            shape = np.sqrt(3) / 2 if band.family.startswith("triangular") else 1.0
            self.cell = shape * (band.lattice_constant / pixel_size) ** 2

    def _phase(self, shift: np.ndarray) -> np.ndarray:
        """exp(−i k·d) for a shift d = (row, col) in pixels."""
        d = np.asarray(shift, dtype=float) * self.pixel_size
        return np.exp(-1j * (self.ky * d[0] + self.kx * d[1]))

    def site(self, shift=(0.0, 0.0), form: int = 0) -> np.ndarray:
        """Site-to-site G0(r − d) on the grid, fft ordering (E, M, M).

        ``form`` = 2 dresses both ends with the Wannier form factor (scaled by the
        unit-cell area in px²): the smooth propagator between scatterers at arbitrary
        pixels, where the bare lattice G0 is a comb that vanishes between sites.
        """
        g = self.gk if not form else self.gk * (self.cell * self.form**form)
        if np.any(shift):
            g = g * self._phase(shift)
        return sfft.ifft2(g, axes=(-2, -1), workers=-1)

    def site_value(self, offset) -> np.ndarray:
        """Site-to-site G0 at one offset (pixels), for every energy (E,)."""
        d = np.asarray(offset, dtype=float) * self.pixel_size
        ph = np.exp(1j * (self.ky * d[0] + self.kx * d[1]))
        return (self.gk * ph).mean(axis=(-2, -1))

    def tip(self, shift=(0.0, 0.0)) -> np.ndarray:
        """Site-to-tip G0(r − d) with the Wannier form factor (E, M, M)."""
        g = self.gk * self.form
        if np.any(shift):
            g = g * self._phase(shift)
        return sfft.ifft2(g, axes=(-2, -1), workers=-1)


def flip(grid: np.ndarray) -> np.ndarray:
    """f(−r) for an array f(r) in fft ordering."""
    return np.roll(grid[..., ::-1, ::-1], 1, axis=(-2, -1))


def tip_blur(grid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a periodic grid (fft ordering) with std ``sigma`` pixels."""
    if sigma <= 0:
        return grid
    m0, m1 = grid.shape[-2:]
    q0 = 2 * np.pi * np.fft.fftfreq(m0)[:, None]
    q1 = 2 * np.pi * np.fft.rfftfreq(m1)[None, :]
    g = np.exp(-0.5 * sigma**2 * (q0**2 + q1**2))
    return sfft.irfft2(sfft.rfft2(grid, axes=(-2, -1), workers=-1) * g, s=(m0, m1),
                       axes=(-2, -1), workers=-1)


def crop_centered(grid: np.ndarray, size: int) -> np.ndarray:
    """The ``size``×``size`` window around r = 0 of a grid in fft ordering."""
    h = size // 2
    idx = np.r_[-h : h + 1]
    return grid[..., idx[:, None], idx[None, :]]


def kernel_grid(
    gf: GreensFunction,
    defect: Defect,
    band: Band,
    *,
    born: bool = False,
    blur: float = 1.0,
) -> np.ndarray:
    """δρ(r) of one defect at the origin on the full grid, fft ordering (E, M, M).

    δρ(r) = −(1/π) Im Σᵢⱼ G0(r − rᵢ) Tᵢⱼ G0(rⱼ − r), T = (1 − V G)⁻¹ V over the
    defect's sites; ``born=True`` uses T = V.
    """
    offs, pots = defect.sites(band, gf.pixel_size)
    n = len(pots)
    e = gf.gk.shape[0]
    # Site-site propagators G_ij (E, S, S)
    g = np.empty((e, n, n), dtype=complex)
    for i in range(n):
        for j in range(n):
            g[:, i, j] = gf.site_value(offs[i] - offs[j])
    vmat = np.diag(pots).astype(complex)
    if born:
        t = np.broadcast_to(vmat, (e, n, n))
    else:
        t = np.linalg.solve(np.eye(n)[None] - vmat[None] @ g, np.broadcast_to(vmat, (e, n, n)))
    out = np.zeros(gf.gk.shape, dtype=float)
    into = [gf.tip(o) for o in offs]  # G0(r − r_i)
    back = [flip(gf.tip(-o)) for o in offs]  # G0(r_j − r)
    acc = np.zeros(gf.gk.shape, dtype=complex)
    for i in range(n):
        for j in range(n):
            acc += into[i] * t[:, i, j, None, None] * back[j]
    out = -acc.imag / np.pi
    return tip_blur(out, blur)
