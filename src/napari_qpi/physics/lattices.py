"""Random tight-binding models: lattices, hoppings up to third neighbours, two-band
models and Nambu superconductors, as k-space Hamiltonians H(k) of n orbitals.

Everything is in pixel units (lattice constant ``a`` in px, k in rad/px) and meV. The
Hamiltonians use the *atomic* gauge (phases e^{ik·d} over the true bond vectors d), so
the inverse FFT of G(k) = (ω + iη − H(k))⁻¹ is the propagator between orbitals at their
real positions: a honeycomb site sees the C3 (not C6) environment it really has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Bravais lattices and the honeycomb; "free" is the continuum (free-electron) band.
LATTICES: tuple[str, ...] = ("free", "square", "rectangular", "oblique", "triangular",
                             "honeycomb")
#: Electronic kinds: one band, two hybridised bands, and Nambu superconductors.
ELECTRONS: tuple[str, ...] = ("normal", "two-band", "d-wave", "s+-")
#: Rotational order of the lattice's point group about a site (0 = isotropic).
LATTICE_ORDER = {"free": 0, "square": 4, "rectangular": 2, "oblique": 2, "triangular": 6,
                 "honeycomb": 3}


def lattice_geometry(lattice: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bravais vectors (2, 2) (rows a1, a2, in units of a; (x, y)) and orbital positions.

    Rectangular and oblique lattices draw their aspect ratio and angle from ``rng``.
    """
    if lattice == "square":
        vecs = [(1.0, 0.0), (0.0, 1.0)]
    elif lattice == "rectangular":
        vecs = [(1.0, 0.0), (0.0, float(rng.uniform(1.25, 1.8)))]
    elif lattice == "oblique":
        b, gam = float(rng.uniform(1.1, 1.5)), float(np.deg2rad(rng.uniform(62, 80)))
        vecs = [(1.0, 0.0), (b * np.cos(gam), b * np.sin(gam))]
    elif lattice in ("triangular", "honeycomb"):
        vecs = [(1.0, 0.0), (0.5, np.sqrt(3) / 2)]
    else:
        raise ValueError(f"lattice={lattice!r} has no Bravais vectors")
    basis = [(0.0, 0.0)]
    if lattice == "honeycomb":
        basis.append((0.5, 0.5 / np.sqrt(3)))  # B at the centroid of an up-triangle
    return np.asarray(vecs), np.asarray(basis)


def lattice_sites(vecs: np.ndarray, basis: np.ndarray, radius: float = 3.5):
    """All (position (x, y), orbital) sites within ``radius`` of the origin, nearest first."""
    sites = []
    for i in range(-6, 7):
        for j in range(-6, 7):
            for o, b in enumerate(basis):
                p = i * vecs[0] + j * vecs[1] + b
                if np.hypot(*p) <= radius:
                    sites.append((p, o))
    sites.sort(key=lambda s: (round(float(np.hypot(*s[0])), 6), s[1]))
    return sites


def shells(vectors: list[np.ndarray], n: int = 3) -> list[list[np.ndarray]]:
    """Group bond vectors into the first ``n`` shells of equal length."""
    lengths = sorted({round(float(np.hypot(*v)), 6) for v in vectors if np.hypot(*v) > 1e-9})
    return [[v for v in vectors if abs(np.hypot(*v) - d) < 1e-6] for d in lengths[:n]]


@dataclass(frozen=True)
class TightBinding:
    """A k-space Hamiltonian H(k) (n × n) on a lattice in pixel units.

    Attributes
    ----------
    lattice, electrons : str
        One of :data:`LATTICES` and :data:`ELECTRONS`.
    a : float
        Lattice constant in px (free electron: the length unit of its defects).
    rotation : float
        In-plane rotation in radians.
    vecs, basis : ndarray
        Bravais vectors and orbital positions in units of ``a``.
    hoppings : tuple of (ndarray, ndarray, float)
        (bond (x, y) in units of a, (orbital_to, orbital_from), t in meV) over both
        directions of every bond; band-structure terms of the first block.
    mu : float
        Chemical potential (meV).
    extra : dict
        Kind-specific numbers (free-electron ``c`` and ``e0``, second band, gap).
    """

    lattice: str
    electrons: str
    a: float
    rotation: float
    vecs: np.ndarray
    basis: np.ndarray
    hoppings: tuple = ()
    mu: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def n_orbitals(self) -> int:
        return 1 if (self.lattice != "honeycomb" and self.electrons == "normal") else 2

    def _k(self, kx: np.ndarray, ky: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        return c * kx + s * ky, -s * kx + c * ky  # k in the lattice frame

    def _band(self, qx, qy, hop=None, mu=None) -> np.ndarray:
        """Single-orbital band from bond sums (or the free-electron parabola)."""
        if self.lattice == "free":
            return self.extra["c"] * (qx**2 + qy**2) - self.extra["e0"]
        eps = np.zeros(np.broadcast(qx, qy).shape)
        for (bx, by), _, t in (self.hoppings if hop is None else hop):
            eps = eps - t * np.cos(self.a * (qx * bx + qy * by))
        return eps - (self.mu if mu is None else mu)

    def hamiltonian(self, kx: np.ndarray, ky: np.ndarray) -> np.ndarray:
        """H(k) as (..., n, n) complex, for wavevectors in rad/px."""
        qx, qy = self._k(kx, ky)
        shape = np.broadcast(qx, qy).shape
        n = self.n_orbitals
        h = np.zeros((*shape, n, n), dtype=complex)
        if self.lattice == "honeycomb":
            for (bx, by), (o1, o0), t in self.hoppings:
                h[..., o1, o0] -= t * np.exp(1j * self.a * (qx * bx + qy * by))
            h[..., 0, 0] -= self.mu
            h[..., 1, 1] -= self.mu
            return h
        eps = self._band(qx, qy)
        if self.electrons == "normal":
            h[..., 0, 0] = eps
        elif self.electrons == "two-band":
            x = self.extra
            eps2 = (x["c2"] * (qx**2 + qy**2) - x["e02"] if self.lattice == "free"
                    else self._band(qx, qy, x["hop2"], x["mu2"]))
            h[..., 0, 0], h[..., 1, 1] = eps, eps2
            h[..., 0, 1] = h[..., 1, 0] = x["v"]
        else:  # Nambu (ψ↑, ψ↓†): [[ξ, Δ], [Δ, −ξ]]
            d0 = self.extra["gap"]
            c1 = np.cos(self.a * (qx * self.vecs[0, 0] + qy * self.vecs[0, 1]))
            c2 = np.cos(self.a * (qx * self.vecs[1, 0] + qy * self.vecs[1, 1]))
            gap = d0 / 2 * (c1 - c2) if self.electrons == "d-wave" else d0 * c1 * c2
            h[..., 0, 0], h[..., 1, 1] = eps, -eps
            h[..., 0, 1] = h[..., 1, 0] = gap
        return h

    def normal_bands(self, kx: np.ndarray, ky: np.ndarray) -> np.ndarray:
        """Eigenbands (..., n) of the normal state (the ξ band for a superconductor)."""
        if self.electrons in ("d-wave", "s+-"):
            return self._band(*self._k(kx, ky))[..., None]
        return np.linalg.eigvalsh(self.hamiltonian(kx, ky))

    def observable(self) -> np.ndarray:
        """Weights of each orbital in the tip's signal (Nambu: the (1,1) element)."""
        if self.electrons in ("d-wave", "s+-"):
            return np.array([1.0, 0.0])
        if self.electrons == "two-band":
            return np.array([1.0, self.extra["w2"]])
        return np.ones(self.n_orbitals)

    def energy_scale(self) -> float:
        """A typical energy of the model in meV (largest hopping or band depth)."""
        if self.lattice == "free":
            return float(abs(self.extra["e0"]))
        return float(max(abs(t) for *_, t in self.hoppings))


def _bravais_hoppings(vecs: np.ndarray, rng: np.random.Generator, t1: float) -> tuple:
    """Random hoppings on the first three shells of a one-orbital Bravais lattice."""
    cands = [i * vecs[0] + j * vecs[1] for i in range(-3, 4) for j in range(-3, 4)]
    hop = []
    for s, shell in enumerate(shells(cands, 3)):
        t = t1 * (1.0 if s == 0 else float(rng.uniform(-0.5, 0.5) * 0.6 ** (s - 1)))
        hop += [(tuple(v), (0, 0), t) for v in shell]
    return tuple(hop)


def random_model(lattice: str, electrons: str, rng: np.random.Generator, *,
                 a: float, rotation: float) -> TightBinding:
    """A random model of the given kind; μ is set later from the filling (see classes)."""
    vecs, basis = (np.eye(2), np.zeros((1, 2))) if lattice == "free" else \
        lattice_geometry(lattice, rng)
    t1 = float(rng.uniform(50, 200))
    extra: dict = {}
    hop: tuple = ()
    if lattice == "free":
        # band bottom from a Friedel period of 2.5–40 px (k_F = π / period)
        kf = np.pi / float(np.exp(rng.uniform(np.log(2.5), np.log(40.0))))
        extra = {"c": 1000.0, "e0": 1000.0 * kf**2}
    elif lattice == "honeycomb":
        sites = lattice_sites(vecs, basis)
        ab = [p - basis[0] for p, o in sites if o == 1]  # A → B bonds
        aa = [p for p, o in sites if o == 0]
        nn, third = shells(ab, 2)  # A–B at 1/√3 (first) and 2/√3 (third neighbours)
        t2 = t1 * float(rng.uniform(-0.3, 0.3))
        t3 = t1 * float(rng.uniform(-0.2, 0.2))
        for v in nn:
            hop += ((tuple(v), (1, 0), t1), (tuple(-v), (0, 1), t1))
        for v in third:
            hop += ((tuple(v), (1, 0), t3), (tuple(-v), (0, 1), t3))
        for v in shells(aa, 1)[0]:
            hop += ((tuple(v), (0, 0), t2), (tuple(v), (1, 1), t2))
    else:
        hop = _bravais_hoppings(vecs, rng, t1)
    if electrons == "two-band":
        extra["v"] = t1 * float(rng.uniform(0.0, 0.3))
        extra["w2"] = float(rng.uniform(0.3, 1.0))
        if lattice == "free":
            c2 = 1000.0 * float(rng.choice([-1, 1]) * rng.uniform(0.4, 2.5))
            kf2 = np.pi / float(np.exp(rng.uniform(np.log(2.5), np.log(40.0))))
            extra["c2"], extra["e02"] = c2, c2 * kf2**2
        else:
            hop2 = _bravais_hoppings(vecs, rng, -t1 * float(rng.uniform(0.3, 1.2)))
            extra["hop2"] = hop2
            extra["mu2"] = t1 * float(rng.uniform(-2, 2))
    if electrons in ("d-wave", "s+-"):
        extra["gap"] = t1 * float(rng.uniform(0.15, 0.4))
    return TightBinding(lattice, electrons, a, rotation, vecs, basis, hop, 0.0, extra)
