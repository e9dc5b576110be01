"""``simulate``: a realistic energy-resolved QPI observation with its ground truth."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .bands import FAMILIES, Band, default_band, fermi_velocities
from .kernels import (
    Defect,
    GreensFunction,
    crop_centered,
    default_defect,
    grid_size,
    kernel_grid,
)
from .noise import add_background, add_noise, add_streaks
from .scatter import activation_maps, linear, multi_impurity

MODELS = ("linear", "tmatrix")

#: Longest decay length (px) of G0 the default broadening allows.
MAX_DEFAULT_DECAY = 80.0
#: Largest Green's-function grid ``simulate`` builds (memory and time grow as M²).
MAX_GRID = 1024


@dataclass(frozen=True)
class Simulation:
    """A simulated observation and the truth behind it.

    Attributes
    ----------
    observation : (E, H, W) float32 ndarray
        dI/dV maps with noise.
    kernel : (E, k, k) float32 ndarray
        Kernel of the first defect type (scatterer on the centre pixel, unit strength).
    activation : (H, W) float32 ndarray
        Scatterer strengths of all types at their pixels.
    positions : (N, 2) int ndarray
        Scatterer pixels (row, col).
    energies : (E,) float ndarray
        Energies in meV.
    pixel_size : float
        Å per pixel.
    clean : (E, H, W) float32 ndarray
        The observation before noise and artefacts.
    kernels : (T, E, k, k) float32 ndarray
        One kernel stack per defect type.
    types : (N,) int ndarray
        Defect type of each scatterer.
    metadata : dict
        The parameters that made it.
    """

    observation: np.ndarray
    kernel: np.ndarray
    activation: np.ndarray
    positions: np.ndarray
    energies: np.ndarray
    pixel_size: float
    clean: np.ndarray
    kernels: np.ndarray
    types: np.ndarray
    metadata: dict = field(default_factory=dict)


def default_energies(band: Band, n: int = 8) -> np.ndarray:
    """``n`` energies (meV) where the family's default band has clear QPI."""
    if band.family == "free_electron":
        lo, hi = -0.3 * band.params["band_bottom"], 0.9 * band.params["band_bottom"]
    else:
        lo, hi = -0.4 * band.energy_scale(), 0.4 * band.energy_scale()
    return np.linspace(lo, hi, n)


def default_pixel_size(band: Band) -> float:
    """2 Å/px for the surface state, a quarter lattice constant for lattices."""
    return 2.0 if band.family == "free_electron" else band.lattice_constant / 4


def decay_length(band: Band, energies: np.ndarray, pixel_size: float,
                 broadening: float) -> float:
    """Longest decay length of G0(r) over ``energies``, in pixels: v_F / η.

    G0(r) ∝ exp(−r / L) with L = ħv_F / η; the Green's-function grid must extend
    several L beyond the kernel window, or the periodic images of the FFT grid leak
    into the kernel and imprint the grid's square (C4) symmetry on it.
    """
    return float(np.max(fermi_velocities(band, energies, pixel_size))) / broadening


def default_broadening(band: Band, energies: np.ndarray, pixel_size: float) -> float:
    """η in meV: 8 % of the band's energy scale, raised where needed so that G0
    decays within :data:`MAX_DEFAULT_DECAY` pixels at every energy."""
    eta = 0.08 * band.energy_scale()
    return max(eta, eta * decay_length(band, energies, pixel_size, eta) / MAX_DEFAULT_DECAY)


def _grid_for(shape: tuple[int, int], kernel_size: int, decay: float) -> int:
    """Grid M: ≥ 2× the map (offsets across the map do not wrap), ≥ 4× the kernel
    window, and ≥ window/2 + 3 decay lengths (periodic images stay below ~1 %)."""
    need = max(2 * max(shape), 4 * kernel_size, kernel_size // 2 + 3 * decay)
    if need > MAX_GRID:
        warnings.warn(
            f"broadening gives a decay length of {decay:.0f} px; the Green's-function grid "
            f"is capped at {MAX_GRID} px, so periodic images may leak into the kernel tails. "
            "Use a larger broadening or a coarser pixel_size.", stacklevel=3)
        need = max(2 * max(shape), 4 * kernel_size, MAX_GRID)
    return grid_size(int(np.ceil(need)))


def _check_positive(name: str, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def simulate(
    *,
    family: str = "free_electron",
    band: Band | None = None,
    shape: tuple[int, int] = (128, 128),
    energies: Sequence[float] | None = None,
    n_scatterers: int = 20,
    defects: Sequence[Defect] | None = None,
    kernel_size: int = 65,
    pixel_size: float | None = None,
    broadening: float | None = None,
    model: str = "linear",
    snr: float = 10.0,
    noise: str = "white",
    streaks: float = 0.0,
    background: float = 0.0,
    tip_blur: float = 1.0,
    positions: np.ndarray | None = None,
    seed: int | None = None,
) -> Simulation:
    """Simulate an energy stack of dI/dV maps with many scatterers.

    Parameters
    ----------
    family : str
        Band family (see :data:`napari_qpi.physics.bands.FAMILIES`), used when
        ``band`` is None; its :func:`~napari_qpi.physics.bands.default_band`.
    band : Band, optional
        The band structure; overrides ``family``.
    shape : (int, int)
        Map size (H, W) in pixels, 16–512.
    energies : sequence of float, optional
        Energies in meV; default 8 energies with clear QPI for the band.
    n_scatterers : int
        Number of scatterers placed at random pixels (ignored if ``positions``).
    defects : sequence of Defect, optional
        Defect types; scatterers pick a type at random. Default: the family's
        default defect with V = 3× the band's energy scale.
    kernel_size : int
        Odd window of the returned ground-truth kernel.
    pixel_size : float, optional
        Å per pixel; default 2 Å for the surface state, a/4 for lattices.
    broadening : float, optional
        η in meV; default 8 % of the band's energy scale, raised where needed so
        that G0 decays within 80 px (see :func:`default_broadening`).
    model : {"linear", "tmatrix"}
        Sum of single-defect kernels, or full multi-impurity T-matrix.
    snr : float
        Signal variance / noise variance per slice (``inf`` for none).
    noise : {"white", "pink"}
    streaks, background : float
        Amplitudes of scan-line streaks and a smooth background, relative to the
        signal std.
    tip_blur : float
        Gaussian tip blur std in pixels.
    positions : (N, 2) int array_like, optional
        Scatterer pixels (row, col); default random.
    seed : int, optional
        Same seed, same arrays.

    Returns
    -------
    Simulation

    Examples
    --------
    >>> from napari_qpi import simulate
    >>> sim = simulate(seed=0)
    >>> sim.observation.shape, sim.kernel.shape
    ((8, 128, 128), (8, 65, 65))
    """
    if band is None:
        if family not in FAMILIES:
            raise ValueError(f"family={family!r} is unknown; choose one of {', '.join(FAMILIES)}")
        band = default_band(family)
    if model not in MODELS:
        raise ValueError(f"model={model!r} is unknown; choose one of {MODELS}")
    h, w = (int(s) for s in shape)
    if not (16 <= h <= 512 and 16 <= w <= 512):
        raise ValueError(f"shape={shape!r} must be between 16 and 512 pixels per side")
    if kernel_size % 2 == 0 or kernel_size < 3:
        raise ValueError(f"kernel_size={kernel_size} must be odd and ≥ 3")
    pixel_size = default_pixel_size(band) if pixel_size is None else float(pixel_size)
    _check_positive("pixel_size", pixel_size)
    energies = default_energies(band) if energies is None else np.atleast_1d(
        np.asarray(energies, dtype=float))
    if energies.ndim != 1 or not np.all(np.isfinite(energies)):
        raise ValueError("energies must be a 1-D sequence of finite numbers (meV)")
    if broadening is None:
        broadening = default_broadening(band, energies, pixel_size)
    broadening = float(broadening)
    _check_positive("broadening", broadening)
    rng = np.random.default_rng(seed)
    if defects is None:
        defects = [default_defect(band, 3.0 * band.energy_scale())]
    defects = list(defects)

    if positions is None:
        if n_scatterers < 1:
            raise ValueError(f"n_scatterers must be ≥ 1, got {n_scatterers}")
        flat = rng.choice(h * w, size=int(n_scatterers), replace=False)
        positions = np.stack(np.unravel_index(flat, (h, w)), axis=1)
    positions = np.asarray(positions, dtype=int).reshape(-1, 2)
    if np.any(positions < 0) or np.any(positions >= (h, w)):
        raise ValueError(f"positions must lie inside the map of shape {(h, w)}")
    n = len(positions)
    types = rng.integers(0, len(defects), n)
    strengths = rng.uniform(0.6, 1.4, n)

    m = _grid_for((h, w), kernel_size, decay_length(band, energies, pixel_size, broadening))
    gf = GreensFunction(band, energies, m, pixel_size, broadening)
    if model == "linear":
        clean, grids = linear(gf, band, defects, positions, types, strengths, (h, w),
                              blur=tip_blur)
    else:
        grids = np.stack([kernel_grid(gf, d, band, blur=tip_blur) for d in defects])
        clean = multi_impurity(gf, band, defects, positions, types, strengths, (h, w),
                               blur=tip_blur)
    obs = add_noise(clean, snr, kind=noise, rng=rng)
    obs = add_streaks(obs, streaks, rng=rng)
    obs = add_background(obs, background, rng=rng)
    kernels = crop_centered(grids, kernel_size)
    activation = activation_maps(1, positions, np.zeros(n, int), strengths, (h, w))[0]
    meta = {
        "family": band.family, "band_params": dict(band.params),
        "lattice_constant": band.lattice_constant, "rotation": band.rotation,
        "broadening": broadening, "model": model, "snr": snr, "noise": noise,
        "streaks": streaks, "background": background, "tip_blur": tip_blur,
        "seed": seed, "defects": [d.__dict__ for d in defects],
    }
    return Simulation(
        observation=obs.astype(np.float32), kernel=kernels[0].astype(np.float32),
        activation=activation.astype(np.float32), positions=positions,
        energies=energies, pixel_size=pixel_size, clean=clean.astype(np.float32),
        kernels=kernels.astype(np.float32), types=types, metadata=meta,
    )
