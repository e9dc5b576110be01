"""Named physics classes (lattice × electrons × defect), their random kernels, and the
fixed split of whole classes that the ``seen`` weights never see.

A class such as ``"square/d-wave/point"`` fixes the kind of physics; everything else
is drawn at random: hoppings up to third neighbours, filling, gap, defect strength from
the Born to the unitary limit, site weights, orientation, lattice constant 2.5–9 px
(free electron: Friedel period 2.5–40 px), decay length 2–150 px (compact kernels ≈ 10 px
across to long tails) and tip blur 0–2 px. Kernels are centred on the defect's first
site, as a scatterer's position marks one of its sites.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .lattices import LATTICE_ORDER, TightBinding, lattice_sites, random_model
from .tmatrix import defect_kernel, velocity

DEFECTS: tuple[str, ...] = ("point", "dimer", "trimer", "plaquette", "line")
#: Which electronic kinds each lattice carries.
_ELECTRONS = {
    "free": ("normal", "two-band"),
    "square": ("normal", "two-band", "d-wave", "s+-"),
    "rectangular": ("normal", "d-wave", "s+-"),
    "oblique": ("normal",),
    "triangular": ("normal", "two-band"),
    "honeycomb": ("normal",),
}
#: Every class, "lattice/electrons/defect".
CLASSES: tuple[str, ...] = tuple(
    f"{lat}/{el}/{d}" for lat, els in _ELECTRONS.items() for el in els for d in DEFECTS)


def is_held_out(name: str) -> bool:
    """Whole classes the ``seen`` weights never see: honeycomb and rectangular lattices,
    d-wave superconductors, dimers and trimers on triangular lattices."""
    lat, el, d = name.split("/")
    return (lat in ("honeycomb", "rectangular") or el == "d-wave"
            or (lat == "triangular" and d in ("dimer", "trimer")))


HELD_OUT: tuple[str, ...] = tuple(c for c in CLASSES if is_held_out(c))
SEEN: tuple[str, ...] = tuple(c for c in CLASSES if not is_held_out(c))
CLASS_SPLITS: dict[str, tuple[str, ...]] = {"all": CLASSES, "seen": SEEN, "held_out": HELD_OUT}
#: Seed offset of evaluation draws of classes (training uses the seed as given).
CLASS_EVAL_STREAM = 2_000_029


@dataclass(frozen=True)
class ClassSpec:
    """One random kernel of a named class, in pixel units.

    Attributes
    ----------
    name : str
        The class, ``"lattice/electrons/defect"``.
    model : TightBinding
    sites : (S, 2) ndarray
        Defect sites (row, col) in px, first site at the origin.
    potentials : (S,) ndarray
        Site potentials in meV.
    impurity : (S, n, n) ndarray
        Each site's potential in orbital space.
    energy, broadening : float
        ω and η in meV.
    decay : float
        Decay length ħv/η of the propagator in px.
    blur : float
        Tip blur std in px.
    order : int
        Rotational order of the kernel (0 isotropic, 1 none).
    """

    name: str
    model: TightBinding
    sites: np.ndarray
    potentials: np.ndarray
    impurity: np.ndarray
    energy: float
    broadening: float
    decay: float
    blur: float
    order: int

    def grid(self, m: int = 256) -> np.ndarray:
        """The kernel on an M × M grid in fft ordering (not normalised); computed on a
        grid of at least 32 + 3 decay lengths and cut to M, so the tails do not wrap."""
        need = 256 if 32 + 3 * self.decay <= 256 else 512
        big = max(m, need)
        g = defect_kernel(self.model, self.sites, self.potentials, self.impurity,
                          self.energy, self.broadening, big, blur=self.blur)
        if big == m:
            return g
        idx = np.r_[0 : m // 2, big - m // 2 : big]
        return g[np.ix_(idx, idx)]

    def kernel(self, size: int = 65, m: int = 256) -> np.ndarray:
        """The (size, size) unit-norm kernel, first defect site on the centre pixel."""
        h = size // 2
        idx = np.r_[-h : h + 1]
        k = self.grid(m)[idx[:, None], idx[None, :]]
        return k / (np.linalg.norm(k) + 1e-30)


def _cluster(sites, size: int, rng: np.random.Generator, line: bool) -> list:
    """A compact (or straight) cluster of ``size`` sites containing the origin."""
    pts = [np.asarray(p) for p, _ in sites]
    orb = [o for _, o in sites]
    dists = sorted({round(float(np.hypot(*p)), 6) for p in pts if np.hypot(*p) > 1e-9})
    d_nn = dists[0]
    chosen = [0]
    if line:
        nn = [i for i, p in enumerate(pts) if abs(np.hypot(*p) - d_nn) < 1e-6]
        step = pts[int(rng.choice(nn))]
        for k in range(1, size):
            hit = [i for i, p in enumerate(pts) if np.allclose(p, k * step, atol=1e-6)]
            if not hit:  # honeycomb bonds do not repeat: continue zig-zag instead
                break
            chosen.append(hit[0])
        if len(chosen) == size:
            return [(pts[i], orb[i]) for i in chosen]
        chosen = [0]
    if size == 2:  # dimer: a first or (less often) second neighbour
        shell = d_nn if rng.random() < 0.7 or len(dists) < 2 else dists[1]
        cand = [i for i, p in enumerate(pts) if abs(np.hypot(*p) - shell) < 1e-6]
        j = int(rng.choice(cand))
        return [(pts[0], orb[0]), (pts[j], orb[j])]
    while len(chosen) < size:
        contacts = {}
        for i, p in enumerate(pts):
            if i in chosen:
                continue
            c = sum(abs(np.hypot(*(p - pts[j])) - d_nn) < 1e-6 for j in chosen)
            if c:
                contacts[i] = c
        best = max(contacts.values())
        # plaquettes close loops (most contacts first); trimers are any compact shape
        pool = [i for i, c in contacts.items() if c == best or size < 4]
        chosen.append(int(rng.choice(pool)))
    return [(pts[i], orb[i]) for i in chosen]


def _defect(name: str, model: TightBinding, rng: np.random.Generator):
    """Sites (px, row/col), impurity matrices and relative weights of the class's defect."""
    lat, el, kind = name.split("/")
    size = {"point": 1, "dimer": 2, "trimer": 3, "plaquette": 4}.get(kind, 0)
    if kind == "line":
        size = int(rng.integers(3, 5))
    if lat == "free":  # continuum: sites at free distances and angles
        pts, ang0 = [np.zeros(2)], float(rng.uniform(0, 2 * np.pi))
        spacing = float(rng.uniform(0.8, 1.25))
        for k in range(1, size):
            if kind == "line":
                pts.append(k * spacing * np.array([np.cos(ang0), np.sin(ang0)]))
            else:
                ang = ang0 if k == 1 else float(rng.uniform(0, 2 * np.pi))
                base = pts[int(rng.integers(0, k))]
                pts.append(base + float(rng.uniform(0.8, 1.25))
                           * np.array([np.cos(ang), np.sin(ang)]))
        sites = [(p, 0) for p in pts]
    else:
        sites = _cluster(lattice_sites(model.vecs, model.basis), size, rng, kind == "line")
    c, s = np.cos(model.rotation), np.sin(model.rotation)
    rows = []
    for p, _ in sites:  # lattice frame (x, y) in units of a → image (row, col) in px
        x, y = c * p[0] - s * p[1], s * p[0] + c * p[1]
        rows.append((model.a * y, model.a * x))
    n = model.n_orbitals
    mats = []
    for _, o in sites:
        if lat == "honeycomb":
            u = np.zeros((n, n))
            u[o, o] = 1.0
        elif el in ("d-wave", "s+-"):  # scalar τ₃, or a magnetic-like τ₀ (30 %)
            u = np.eye(2) if rng.random() < 0.3 else np.diag([1.0, -1.0])
        elif el == "two-band":
            u = np.diag([1.0, float(rng.uniform(0.0, 1.0))])
        else:
            u = np.eye(1)
        mats.append(u)
    weights = np.concatenate([[1.0], rng.uniform(0.4, 1.2, len(sites) - 1)])
    return np.asarray(rows), np.asarray(mats, dtype=complex), weights


def _point_order(lat: str, el: str) -> int:
    if el in ("d-wave", "s+-"):
        return 2 if lat == "rectangular" else 4
    return LATTICE_ORDER[lat]


def sample_class(name: str, rng=None) -> ClassSpec:
    """Draw one kernel of the named class (see :data:`CLASSES`).

    Parameters
    ----------
    name : str
        ``"lattice/electrons/defect"``.
    rng : int or numpy.random.Generator, optional

    Returns
    -------
    ClassSpec
    """
    if name not in CLASSES:
        raise ValueError(f"class {name!r} is unknown; choose one of CLASSES")
    rng = np.random.default_rng(rng)
    lat, el, kind = name.split("/")
    a = float(np.exp(rng.uniform(np.log(2.5), np.log(9.0)))) if lat != "free" else \
        float(rng.uniform(2.0, 5.0))
    model = random_model(lat, el, rng, a=a, rotation=float(rng.uniform(0, 2 * np.pi)))
    if lat == "free":
        energy = 0.0
    else:
        k = 2 * np.pi * np.fft.fftfreq(96)
        ky, kx = np.meshgrid(k, k, indexing="ij")
        if el in ("d-wave", "s+-"):
            xi = model.normal_bands(kx, ky)
            model = replace(model, mu=float(np.quantile(xi, rng.uniform(0.15, 0.85))))
            energy = float(rng.choice([-1, 1]) * rng.uniform(0.2, 1.5) * model.extra["gap"])
        else:
            bands = model.normal_bands(kx, ky)
            energy = float(np.quantile(bands, rng.uniform(0.04, 0.96)))
    v_at = 0.0 if el in ("d-wave", "s+-") else energy
    decay = float(np.exp(rng.uniform(np.log(2.0), np.log(150.0))))
    broadening = velocity(model, v_at) / decay
    sites, mats, weights = _defect(name, model, rng)
    # Born (weak) to unitary (strong) limit, either sign
    strength = float(rng.choice([-1, 1]) * np.exp(rng.uniform(np.log(0.1), np.log(6.0))))
    pots = strength * model.energy_scale() * weights
    order = _point_order(lat, el) if kind == "point" else 1
    return ClassSpec(name, model, sites, pots, mats, energy, broadening, decay,
                     float(rng.uniform(0.0, 2.0)), order)


def sample_classes(split: str, n: int, rng=None) -> list[ClassSpec]:
    """Draw ``n`` kernels cycling through the classes of ``split`` in a seeded random
    order (``"all"``, ``"seen"`` or ``"held_out"``)."""
    if split not in CLASS_SPLITS:
        raise ValueError(f"split={split!r} is unknown; choose one of {tuple(CLASS_SPLITS)}")
    rng = np.random.default_rng(rng)
    names = CLASS_SPLITS[split]
    out = []
    while len(out) < n:
        for i in rng.permutation(len(names))[: n - len(out)]:
            out.append(sample_class(names[int(i)], rng))
    return out
