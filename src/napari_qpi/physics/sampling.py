"""Random kernels over physically sensible parameter ranges, and the fixed
seen/unseen split of families every benchmark uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bands import FAMILIES, HBAR2_2ME, Band, fermi_velocities
from .kernels import Defect, GreensFunction, crop_centered, default_defect, kernel_grid

#: Families the models train on when a held-out evaluation is wanted.
SEEN_FAMILIES: tuple[str, ...] = ("free_electron", "square", "triangular", "tilted")
#: Families never shown in training for the unseen-family benchmark rows.
UNSEEN_FAMILIES: tuple[str, ...] = ("rectangular", "triangular_c3")
SPLITS: dict[str, tuple[str, ...]] = {
    "seen": SEEN_FAMILIES,
    "unseen": UNSEEN_FAMILIES,
    "all": FAMILIES,
}
#: Seed offsets that keep training and evaluation draws apart ("unseen kernels").
TRAIN_STREAM, EVAL_STREAM = 0, 1_000_003


@dataclass(frozen=True)
class KernelSpec:
    """Everything that fixes a single-defect kernel at one energy, in pixel units.

    Attributes
    ----------
    band : Band
    defect : Defect
    energy : float
        ω in meV.
    broadening : float
        η in meV.
    pixel_size : float
        Å per pixel.
    blur : float
        Tip blur std in pixels.
    """

    band: Band
    defect: Defect
    energy: float
    broadening: float
    pixel_size: float
    blur: float = 1.0

    def kernel(self, size: int = 65, *, grid: int = 256) -> np.ndarray:
        """The (size, size) kernel, scatterer on the centre pixel, unit L2 norm."""
        gf = GreensFunction(self.band, np.array([self.energy]), grid, self.pixel_size,
                            self.broadening)
        k = crop_centered(kernel_grid(gf, self.defect, self.band, blur=self.blur), size)[0]
        return k / (np.linalg.norm(k) + 1e-30)


def sample_spec(family: str, rng=None) -> KernelSpec:
    """Draw one kernel of ``family`` with an oscillation period of ~3–40 px.

    Parameters
    ----------
    family : str
        One of :data:`napari_qpi.physics.bands.FAMILIES`.
    rng : int or numpy.random.Generator, optional

    Returns
    -------
    KernelSpec
    """
    rng = np.random.default_rng(rng)
    theta = float(rng.uniform(0, 2 * np.pi))
    if family == "free_electron":
        period = float(np.exp(rng.uniform(np.log(4.0), np.log(36.0))))  # px
        pixel_size = float(rng.uniform(0.5, 4.0))
        m_eff = float(rng.uniform(0.25, 1.2))
        kf = np.pi / (period * pixel_size)
        band = Band(family, {"m_eff": m_eff, "band_bottom": HBAR2_2ME / m_eff * kf**2})
        energy = 0.0
    else:
        a_px = float(rng.uniform(3.0, 7.0))
        a = 3.6
        pixel_size = a / a_px
        t = float(rng.uniform(50, 200))
        params = {
            "square": lambda: {"t": t, "tp": t * rng.uniform(-0.45, 0.2), "mu": 0.0},
            "rectangular": lambda: {"tx": t, "ty": t * rng.uniform(0.3, 0.75), "mu": 0.0},
            "triangular": lambda: {"t": t, "mu": 0.0},
            "triangular_c3": lambda: {"t": t, "t3": t * rng.uniform(0.15, 0.5), "mu": 0.0},
            "tilted": lambda: {"t": t, "tp": t * rng.uniform(-0.3, 0.1),
                               "v": t * rng.uniform(0.2, 0.6), "mu": 0.0},
        }[family]()
        band = Band(family, params, a, theta)
        # energy at a random filling: near the band bottom or top the period is long
        kgrid = 2 * np.pi * np.fft.fftfreq(96) / pixel_size
        eps = band.dispersion(*np.meshgrid(kgrid, kgrid, indexing="xy"))
        fill = float(rng.uniform(0.04, 0.45))
        energy = float(np.quantile(eps, fill if rng.random() < 0.7 else 1 - fill))
    scale = band.energy_scale()
    strength = float(rng.choice([-1, 1]) * np.exp(rng.uniform(np.log(0.3), np.log(4.0))) * scale)
    defect = default_defect(band, strength)
    decay_px = float(rng.uniform(15.0, 70.0))  # decay length of the tail
    broadening = float(fermi_velocities(band, [energy], pixel_size)[0]) / decay_px
    return KernelSpec(band, defect, energy, broadening, pixel_size,
                      float(rng.uniform(0.7, 1.3)))


def sample_specs(split: str, n: int, rng=None) -> list[KernelSpec]:
    """Draw ``n`` kernels cycling through the families of ``split``."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is unknown; choose one of {tuple(SPLITS)}")
    rng = np.random.default_rng(rng)
    fams = SPLITS[split]
    return [sample_spec(fams[i % len(fams)], rng) for i in range(n)]


def simulate_spec(spec: KernelSpec, **kwargs):
    """:func:`~.simulation.simulate` of one map at the spec's energy, with its band,
    pixel size, broadening and tip blur; ``defects`` defaults to the spec's defect and
    ``energies`` to the spec's one energy, other keywords (shape, scatterers, window, SNR,
    seed, …) pass through."""
    from .simulation import simulate

    kwargs.setdefault("defects", [spec.defect])
    kwargs.setdefault("energies", [spec.energy])
    return simulate(band=spec.band, pixel_size=spec.pixel_size,
                    broadening=spec.broadening, tip_blur=spec.blur, **kwargs)


__all__ = ["KernelSpec", "sample_spec", "sample_specs", "simulate_spec", "SPLITS",
           "SEEN_FAMILIES", "UNSEEN_FAMILIES", "Defect"]
