"""``simulate``: a realistic energy-resolved QPI observation with its ground truth."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._validation import (
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    check_seed,
    check_shape2,
)
from .bands import FAMILIES, Band, default_band, fermi_velocities
from .kernels import (
    Defect,
    GreensFunction,
    crop_centered,
    default_defect,
    grid_size,
    kernel_grid,
)
from .noise import NOISE_KINDS, add_background, add_noise, add_streaks
from .scatter import activation_maps, linear, multi_impurity

MODELS = ("linear", "tmatrix")

#: Longest decay length (px) of G0 the default broadening allows.
MAX_DEFAULT_DECAY = 80.0
#: Largest Green's-function grid ``simulate`` builds (memory and time grow as M²).
MAX_GRID = 1024
#: Default ground-truth kernel window (px); it must fit the map.
DEFAULT_KERNEL_SIZE = 65
#: Map sides ``simulate`` accepts (px).
MIN_SIDE, MAX_SIDE = 16, 512
#: Most memory one ``simulate`` call may take (bytes): a laptop's share. Larger requests
#: are refused up front (:func:`memory_estimate`) instead of failing with MemoryError.
MAX_SIMULATION_BYTES = 4 * 2**30


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
    window, and ≥ window/2 + 3 decay lengths (periodic images stay below ~1 %).

    Capped at :data:`MAX_GRID` (with a warning), never below the map's own need of 2×
    its side, which is ≤ :data:`MAX_GRID` for every shape :func:`simulate` accepts.
    """
    need = max(2 * max(shape), 4 * kernel_size, kernel_size // 2 + 3 * decay)
    if need > MAX_GRID:
        why = (f"kernel_size={kernel_size} asks for a {4 * kernel_size} px grid"
               if 4 * kernel_size >= need else
               f"broadening gives a decay length of {decay:.0f} px")
        warnings.warn(
            f"{why}; the Green's-function grid is capped at {MAX_GRID} px, so periodic "
            "images may leak into the kernel tails. Use a smaller kernel_size, a larger "
            "broadening or a coarser pixel_size.", stacklevel=3)
        # the map itself must not wrap; simulate's checks keep this at MAX_GRID
        need = max(2 * max(shape), kernel_size, MAX_GRID)
    return grid_size(int(np.ceil(need)))


def memory_estimate(n_energies: int, grid: int, *, sites: int = 1, n_defects: int = 1,
                    tmatrix_sites: int = 0, map_pixels: int = 0) -> int:
    """Peak bytes of :func:`simulate`, fitted to measured peaks of every family (within
    ~30 %): per energy and grid pixel, G0(k), each defect site's propagators and the FFT
    buffers, 72 + 36·S B (S sites per defect; the T-matrix adds its site grids, 12·S·(S+1)
    B). The T-matrix (``tmatrix_sites`` n > 0) also holds five complex (n × n) site
    matrices per energy and, per site, its propagators over the padded map
    (``map_pixels``)."""
    n = tmatrix_sites
    per_pixel = 72 + 36 * sites + 16 * (n_defects - 1) + (12 * sites * (sites + 1) if n else 0)
    return int(n_energies * (grid * grid * per_pixel + 80 * n * n) + 32 * n * map_pixels)


def _check_memory(kw: dict, grid: int, defects: list) -> None:
    """Refuse a simulation that needs more than :data:`MAX_SIMULATION_BYTES`."""
    sites = max(len(d.sites(kw["band"], kw["pixel_size"])[1]) for d in defects)
    n = len(kw["positions"]) if kw["positions"] is not None else kw["n_scatterers"]
    pad = 2 * int(np.ceil(4 * kw["tip_blur"]))
    tm = kw["model"] == "tmatrix"
    e, (h, w) = len(kw["energies"]), kw["shape"]

    def need(energies: int) -> int:
        return memory_estimate(energies, grid, sites=sites, n_defects=len(defects),
                               tmatrix_sites=n * sites if tm else 0,
                               map_pixels=(h + pad) * (w + pad))

    if need(e) <= MAX_SIMULATION_BYTES:
        return
    fits = max(0, (MAX_SIMULATION_BYTES - need(0)) // (need(1) - need(0)))  # need is linear
    fix = (f"pass at most {fits} energies per call (and concatenate the stacks)" if fits
           else "pass fewer scatterers or model='linear'")
    raise ValueError(f"this simulation needs about {need(e) / 2**30:.1f} GiB of memory ({e} "
                     f"energies on a {grid}×{grid} Green's-function grid"
                     f"{f', {n} scatterers in the T-matrix' if tm else ''}), more than the "
                     f"{MAX_SIMULATION_BYTES / 2**30:g} GiB limit; {fix}, or a smaller "
                     "shape or kernel_size")


def _checked_arguments(**kw) -> dict:
    """Every argument of :func:`simulate` checked up front, in its canonical type."""
    if kw["band"] is None:
        family = check_choice(kw["family"], "family", FAMILIES)
        kw["band"] = default_band(family)
    elif not isinstance(kw["band"], Band):
        raise ValueError(f"band must be a napari_qpi.physics.Band, got {type(kw['band'])}")
    band = kw["band"]
    check_choice(kw["model"], "model", MODELS)
    check_choice(kw["noise"], "noise", NOISE_KINDS)
    h, w = kw["shape"] = check_shape2(kw["shape"], "shape", low=MIN_SIDE, high=MAX_SIDE)
    k = kw["kernel_size"] = check_int(kw["kernel_size"], "kernel_size")
    if k % 2 == 0 or k < 3:
        raise ValueError(f"kernel_size={k} must be odd and ≥ 3")
    if k > min(h, w):
        side = min(h, w) - (1 - min(h, w) % 2)
        default = " (the default)" if k == DEFAULT_KERNEL_SIZE else ""
        raise ValueError(f"kernel_size={k}{default} is larger than the {h}×{w} map; pass "
                         f"kernel_size={side} or another odd window ≤ {side}, or a larger "
                         "shape")
    kw["pixel_size"] = default_pixel_size(band) if kw["pixel_size"] is None else \
        check_positive(kw["pixel_size"], "pixel_size")
    kw["energies"] = _energies(kw["energies"], band)
    if kw["broadening"] is None:
        kw["broadening"] = default_broadening(band, kw["energies"], kw["pixel_size"])
    kw["broadening"] = check_positive(kw["broadening"], "broadening")
    kw["snr"] = check_positive(kw["snr"], "snr", allow_inf=True)
    for name in ("streaks", "background", "tip_blur"):
        kw[name] = check_nonnegative(kw[name], name)
    kw["seed"] = check_seed(kw["seed"])
    if kw["defects"] is not None:
        defects = list(kw["defects"]) if isinstance(kw["defects"], (list, tuple)) else None
        if not defects or not all(isinstance(d, Defect) for d in defects):
            raise ValueError(f"defects must be a non-empty list of Defect (or None for the "
                             f"band's default defect), got {kw['defects']!r}")
        kw["defects"] = defects
    if kw["positions"] is None:
        kw["n_scatterers"] = check_int(kw["n_scatterers"], "n_scatterers", low=1)
        if kw["n_scatterers"] > h * w:
            raise ValueError(f"n_scatterers={kw['n_scatterers']} is more than the {h * w} "
                             f"pixels of a {h}×{w} map; pass at most {h * w}")
    else:
        kw["positions"] = _positions(kw["positions"], (h, w))
    return kw


def _energies(energies, band: Band) -> np.ndarray:
    if energies is None:
        return default_energies(band)
    try:
        out = np.atleast_1d(np.asarray(energies, dtype=float))
    except (TypeError, ValueError):
        out = np.array([np.nan])
    if out.ndim != 1 or out.size == 0 or not np.all(np.isfinite(out)):
        raise ValueError(f"energies must be a non-empty 1-D sequence of finite numbers "
                         f"(meV), got {energies!r}")
    return out


def _positions(positions, shape: tuple[int, int]) -> np.ndarray:
    try:
        pos = np.asarray(positions, dtype=float)
    except (TypeError, ValueError):
        pos = np.array([np.nan])
    if pos.ndim != 2 or pos.shape[1:] != (2,) or len(pos) == 0:
        hint = "; for one scatterer pass [[row, col]]" if pos.shape == (2,) else ""
        raise ValueError(f"positions must be an (N, 2) array of (row, col) pixels with "
                         f"N ≥ 1, got shape {pos.shape}{hint}")
    if not np.all(np.isfinite(pos)) or np.any(pos != np.round(pos)):
        raise ValueError("positions must be whole pixel numbers (row, col); round them "
                         "first if sub-pixel positions were meant")
    pos = pos.astype(int)
    if np.any(pos < 0) or np.any(pos >= shape):
        raise ValueError(f"positions must lie inside the map of shape {shape} "
                         f"(rows 0..{shape[0] - 1}, cols 0..{shape[1] - 1})")
    return pos


def simulate(
    *,
    family: str = "free_electron",
    band: Band | None = None,
    shape: tuple[int, int] = (128, 128),
    energies: Sequence[float] | None = None,
    n_scatterers: int = 20,
    defects: Sequence[Defect] | None = None,
    kernel_size: int = DEFAULT_KERNEL_SIZE,
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
        Number of scatterers placed at distinct random pixels, 1 to H × W (ignored if
        ``positions``).
    defects : sequence of Defect, optional
        Defect types; scatterers pick a type at random. Default: the family's
        default defect with V = 3× the band's energy scale.
    kernel_size : int
        Odd window of the returned ground-truth kernel, at most the map's shorter side
        (pass a smaller one for maps under 65 px).
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
        Scatterer pixels (row, col), whole numbers inside the map; default random.
    seed : int, optional
        Non-negative; same seed, same arrays.

    Returns
    -------
    Simulation

    Raises
    ------
    ValueError
        Any argument out of range, of the wrong type, or not a whole number where one is
        needed; the message names the argument and what to pass. A simulation that
        needs more than :data:`MAX_SIMULATION_BYTES` (4 GiB) of memory, before any work.

    Examples
    --------
    >>> from napari_qpi import simulate
    >>> sim = simulate(seed=0)
    >>> sim.observation.shape, sim.kernel.shape
    ((8, 128, 128), (8, 65, 65))
    """
    args = _checked_arguments(
        family=family, band=band, shape=shape, energies=energies, n_scatterers=n_scatterers,
        defects=defects, kernel_size=kernel_size, pixel_size=pixel_size,
        broadening=broadening, model=model, snr=snr, noise=noise, streaks=streaks,
        background=background, tip_blur=tip_blur, positions=positions, seed=seed)
    band, (h, w), energies, kernel_size, pixel_size, broadening = (
        args["band"], args["shape"], args["energies"], args["kernel_size"],
        args["pixel_size"], args["broadening"])
    snr, streaks, background, tip_blur, seed = (
        args["snr"], args["streaks"], args["background"], args["tip_blur"], args["seed"])
    rng = np.random.default_rng(seed)
    if args["defects"] is None:
        defects = [default_defect(band, 3.0 * band.energy_scale())]
    else:
        defects = args["defects"]

    positions = args["positions"]
    if positions is None:
        flat = rng.choice(h * w, size=args["n_scatterers"], replace=False)
        positions = np.stack(np.unravel_index(flat, (h, w)), axis=1)
    n = len(positions)
    types = rng.integers(0, len(defects), n)
    strengths = rng.uniform(0.6, 1.4, n)

    m = _grid_for((h, w), kernel_size, decay_length(band, energies, pixel_size, broadening))
    _check_memory(args, m, defects)
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
