"""``extract``: kernel, activation and residual from an observation, by any method.

The pipeline, the same for every method:

1. check the arguments (:mod:`.validate`), remove each slice's mean, divide the stack by
   one global scale (relative amplitudes across energies are physics and are kept),
   estimate the noise per slice and — unless given — the kernel window (:mod:`.window`);
2. run the method (:mod:`.registry`; learned ones at their working scale, :mod:`.scale`);
3. fit what the kernel's shape leaves free — the shared activation and a signed amplitude
   per energy — to the map (:mod:`.fit`);
4. score the fit without ground truth (:mod:`.quality`) and warn when it explains little.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_int, check_nonnegative
from ..progress import Progress, checkpoint, drain
from .config import AutoConfig
from .finish import choose_window, finish, is_structured, structure_warning, window_warnings
from .registry import Method, Problem, get_method
from .run import DEFAULT_KERNEL_SIZE, run_method
from .sparsity import first_noise
from .threads import use_threads
from .validate import check_device, check_kernel_size, check_pixel_size, check_size, validate


@dataclass(frozen=True)
class Extraction:
    """Result of :func:`extract`.

    Attributes
    ----------
    kernel : (E, k, k) or (k, k) ndarray; (T, E, k, k) or (T, k, k) with T species
        Scatterer on the centre pixel. Carries the fitted amplitude and sign of each
        energy in the observation's units per unit scatterer strength (the activation's
        active pixels average 1); a slice left out of the fit has a zero kernel.
    activation : (H, W) ndarray; (T, H, W) with T species
        Sparse non-negative scatterer map shared by every energy (one per species).
    residual : ndarray
        observation − (kernel ⊛ activation + per-energy offset), like the observation.
    uncertainty : ndarray or None
        Per-pixel kernel uncertainty (posterior spread) of learned methods, like ``kernel``.
    latent : ndarray or None
        Latent codes (E, d) of model-based methods, belonging to ``kernel`` (a latent fit
        kept by ``auto`` or ``refine`` decodes to the kernel turned by
        ``info["latent_view"]`` quarter turns: the view of the map it was fitted on).
    method : str
        The method that produced the kernel (for ``"auto"``: the chosen candidate).
    info : dict
        Quality without ground truth and diagnostics: ``relative_residual``,
        ``cv_residual`` (residual on held-out pixels, see :mod:`.quality`), ``whiteness``,
        ``active_fraction``, ``per_energy_residual``, ``kernel_size``,
        ``kernel_size_auto``, ``noise_level``, ``sparsity``, ``lockin_pole`` and
        ``lockin_delay`` (the lock-in's pole read from the residual and the kernel's shift
        along x for it, :mod:`.lockin`), ``pixel_size``, ``seconds``,
        ``seconds_kernel``, ``threads`` (CPU threads given to torch, see
        :mod:`.threads`; None without torch), ``warnings`` (list of str),
        ``requested_method``; with
        ``"auto"`` also ``candidates`` (name → scores), ``candidates_energies`` (how many
        energies they were scored on: a stack longer than ``AutoConfig.view_energies`` is
        judged on that many) and ``refinement_gain`` (how much
        lower the kept candidate's held-out residual is than the two-stage network's
        alone, a fraction: what the minutes of refinement bought).
    """

    kernel: np.ndarray
    activation: np.ndarray
    residual: np.ndarray
    uncertainty: np.ndarray | None
    latent: np.ndarray | None
    method: str
    info: dict = field(default_factory=dict)


def _as_array(observation):
    from ..io.stack import QPIStack

    if isinstance(observation, QPIStack):
        return observation.data, observation.pixel_size
    return observation, None


def prepare(observation: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, list[int]]:
    """Mean-free stack on one global scale, its scale, noise per slice, constant slices."""
    from .fit import live_slices
    from .noise import noise_level

    y = observation - observation.mean(axis=(-2, -1), keepdims=True)
    live = live_slices(y)
    scale = float(np.sqrt((y[live] ** 2).mean()))
    y = y / scale
    y[~live] = 0.0
    noise = np.array([noise_level(s) if ok else 0.0 for s, ok in zip(y, live)])
    return y, scale, noise, [int(i) for i in np.nonzero(~live)[0]]


def iter_extract(
    observation,
    *,
    method: str = "auto",
    positions=None,
    pixel_size: float | None = None,
    kernel_size: int | None = None,
    device: str | None = None,
    weights: str = "default",
    sparsity: float | None = None,
    rng: int = 0,
    preprocess="auto",
    config: AutoConfig | None = None,
    n_types: int | str = 1,
) -> Generator[Progress, None, Extraction]:
    """Generator form of :func:`extract`: yields :class:`~napari_qpi.progress.Progress`,
    returns the :class:`Extraction`. Closing the generator between events cancels."""
    t0 = time.perf_counter()
    spec = get_method(method)
    obs_in, stack_pixel = _as_array(observation)
    pixel_size = check_pixel_size(stack_pixel if pixel_size is None else pixel_size)
    check_size(np.shape(obs_in), spec)  # before validate copies a huge array
    obs, pos = validate(obs_in, positions)
    sparsity = None if sparsity is None else check_nonnegative(sparsity, "sparsity")
    rng = check_int(rng, "rng", low=0)
    from .species import check_types

    n_types = check_types(n_types)
    if n_types != 1 and positions is not None:
        raise ValueError(f"n_types={n_types!r} finds each species' scatterers itself; "
                         "leave positions out, or pass n_types=1 to use them")
    if config is None:
        config = AutoConfig()
    elif not isinstance(config, AutoConfig):
        raise ValueError(f"config={config!r} is not an AutoConfig; pass "
                         "napari_qpi.AutoConfig(...) with the rules to change, or None")
    # one power of two brings the data near 1 before anything squares it (1e154 would
    # overflow) or casts it to float32 (1e-45 would vanish); exact, undone at the end
    unit = float(2.0 ** np.round(np.log2(np.abs(obs).max())))
    obs = obs / unit
    from ..io.pipeline import preprocess as run_preprocess
    from .fit import live_slices

    yield Progress("preprocessing", 0, 1)
    live = live_slices(obs)  # on the data as given: preprocessing leaves rounding noise
    obs, applied = run_preprocess(obs, preprocess)
    checkpoint()  # before torch's first import, itself about a second
    obs[~live] = 0.0
    kernel_size = check_kernel_size(kernel_size, obs.shape[-2:])
    device = check_device(device)
    threads = use_threads(spec.uses_torch) if device == "cpu" else None
    if spec.needs_positions and pos is None:
        raise ValueError(f"method={spec.name!r} needs positions: the (N, 2) scatterer pixels "
                         "(row, col); or choose a blind method such as 'auto'")
    warnings: list[str] = []
    if pos is not None and not spec.accepts_positions:
        warnings.append(f"method {spec.name!r} is blind: the given positions were not used")
        pos = None
    y, scale, noise, dead = prepare(obs)
    if dead:
        warnings.append(f"slice(s) {', '.join(map(str, dead))} are constant and were left "
                        "out of the fit")
    auto_k = kernel_size is None
    side = min(y.shape[-2:])
    largest = min(DEFAULT_KERNEL_SIZE, side - (1 - side % 2))
    if auto_k:
        from .window import estimate_window

        yield Progress("choosing the kernel window", 0, 1)
        kernel_size = estimate_window(y, maximum=largest)
    run_k = kernel_size if (spec.windowed or not auto_k) else largest
    yield Progress("reading the noise level from held-out pixels", 0, 1)
    first = first_noise(y, noise, int(run_k), pos, int(rng))
    problem = Problem(y, pos, int(run_k), device=device, pixel_size=pixel_size,
                      noise=first.noise, weights=weights, rng=int(rng),
                      max_window=largest if auto_k else None, config=config)
    result = yield from run_method(spec, problem)
    check_finite(result.kernel, f"the kernel of method {spec.name!r}", spec, weights)
    t_kernel = time.perf_counter() - t0
    if auto_k:
        result = yield from choose_window(y, result, problem, int(kernel_size), sparsity)
    out = yield from finish(y, result, problem, sparsity=sparsity, spectral=noise,
                            known=first)
    if auto_k:
        out["info"]["warnings"] += window_warnings(int(kernel_size), int(largest),
                                                   int(result.kernel.shape[-1]))
    info = {**result.info, **out.pop("info")}
    info["warnings"] = warnings + info.get("warnings", [])
    species = None
    if n_types != 1:
        from .quality import residual_structure, whiteness
        from .species import separate

        yield Progress("separating defect species", 0, 1)
        species, extra = separate(y, out["kernel"], info["noise"], n_types, rng=int(rng),
                                  learned=spec.learned, weights=weights, device=device)
        info["warnings"] += extra.pop("warnings")
        info.update(extra)
        if species is not None:
            one_species = structure_warning(info["residual_structure"])
            out.update(kernel=species.kernels, activation=species.activations,
                       residual=species.residual)
            info.update(relative_residual=species.relative_residual,
                        cv_residual=extra["types_cv"][extra["n_types"]],
                        scatterers_found=int(sum(extra["scatterers_per_type"])),
                        active_fraction=float(np.mean(species.activations.max(0) > 0)),
                        whiteness=whiteness(species.residual),
                        residual_structure=residual_structure(species.residual))
            # the one-species fit's structure warning, re-read on this residual
            info["warnings"] = [w for w in info["warnings"] if w != one_species]
            if is_structured(info["residual_structure"], info["relative_residual"]):
                info["warnings"].append(structure_warning(info["residual_structure"]))
        yield Progress("separating defect species", 1, 1)
    info.update(seconds=time.perf_counter() - t0, seconds_kernel=t_kernel,
                pixel_size=pixel_size, kernel_size=int(result.kernel.shape[-1]),
                kernel_size_auto=auto_k,
                requested_method=spec.name, preprocess=applied, threads=threads,
                noise_level_spectral=float(np.sqrt(np.mean(noise**2)) * scale))
    info["noise_level"] = float(np.sqrt(np.mean(info.pop("noise") ** 2)) * scale * unit)
    info["noise_level_spectral"] *= unit
    for name in ("kernel", "activation", "residual"):
        check_finite(out[name], f"the fitted {name}", spec, weights)
    check_finite(np.array([info["cv_residual"], info["relative_residual"]]),
                 "the fit's scores", spec, weights)
    kernel = out["kernel"] * (scale * unit)
    residual = out["residual"] * (scale * unit)
    # float32 unless the data's units put the values beyond it (1e40 → inf, 1e-45 → 0)
    dtype = np.float32 if 1e-30 < unit < 1e30 else np.float64
    squeeze = np.ndim(obs_in) == 2  # a 2-D map in, 2-D kernel and residual out
    unc, latent = (result.uncertainty, result.latent) if species is None else (None, None)
    if squeeze:
        kernel = kernel[:, 0] if species is not None else kernel[0]
        residual = residual[0]
        unc = None if unc is None else unc[0]
    return Extraction(kernel.astype(dtype), out["activation"].astype(np.float32),
                      residual.astype(dtype), unc, latent,
                      info.pop("method", spec.name), info)


def check_finite(values, what: str, spec: Method, weights) -> None:
    """Refuse a NaN or infinite result, naming where it came from: a NaN compares false
    with every threshold, so it would pass every quality check unseen."""
    values = np.asarray(values)
    if np.isfinite(values).all():
        return
    cause = (f"the weight set {weights!r} may be corrupt (reinstall napari-qpi or retrain)"
             if spec.learned else "the fit diverged")
    raise ValueError(f"{what} holds {np.count_nonzero(~np.isfinite(values))} NaN or "
                     f"infinite values: {cause}; try method='sbd' or 'power', or report it")


def extract(
    observation,
    *,
    method: str = "auto",
    positions=None,
    pixel_size: float | None = None,
    kernel_size: int | None = None,
    device: str | None = None,
    weights: str = "default",
    sparsity: float | None = None,
    rng: int = 0,
    preprocess="auto",
    config: AutoConfig | None = None,
    n_types: int | str = 1,
) -> Extraction:
    """Extract the single-scatterer kernel from an observation.

    Parameters
    ----------
    observation : (Y, X) or (E, Y, X) array_like, or QPIStack
        dI/dV map(s); one scatterer map is shared by every energy.
    method : str
        One of :data:`~napari_qpi.extraction.registry.METHODS`: ``"auto"`` (default: the
        candidates, scored by how well each predicts held-out pixels),
        ``"two-stage"`` (learned latent prior), ``"refine"``, ``"sbd"``, ``"power"``,
        ``"wiener"`` (needs ``positions``), ``"one-step"``.
    positions : (N, 2) array_like, optional
        Known scatterer pixels (row, col); guided mode where a method uses them.
    pixel_size : float, optional
        Å per pixel (taken from a QPIStack when given one); recorded in ``info``. The
        result does not depend on it: learned methods choose their working scale from the
        map's own QPI wavelength in pixels.
    kernel_size : int, optional
        Odd window of the returned kernel; default chosen from the map (where its
        autocorrelation meets its floor), at most 65 px.
    device : str, optional
        Torch device for learned methods and SBD ("cpu", "cuda"); default CPU.
    weights : str
        Weight set of learned methods: ``"default"``, ``"seen"`` (benchmarks) or a folder
        from ``napari-qpi train``.
    sparsity : float, optional
        Multiplier of the noise-scaled ℓ1 weight of the activation fit (default 1; see
        :func:`~napari_qpi.extraction.fit.noise_scaled_sparsity`).
    rng : int
        Seed of every random choice (held-out pixels, SBD restarts).
    preprocess : "auto", None or sequence of str or dict
        Preprocessing before the fit (:func:`napari_qpi.io.pipeline.preprocess`):
        ``"auto"`` (default) removes a slow background always, scan-line offsets and the
        lattice's Bragg peaks when the map shows them; None fits the map as given; a list
        of steps (``"background"``, ``"lines"``, ``"drift"``, ``"bragg"``,
        ``{"step": "lockin", "time_constant": 1.5}``, …) applies those in order. The
        steps applied are in ``info["preprocess"]``; the residual is that of the
        preprocessed map.
    config : AutoConfig, optional
        The rules of the automatic choices — auto's pick among its candidates, the
        automatic window, the working scale, the views and iterations of the latent fit
        (:class:`~napari_qpi.extraction.config.AutoConfig`); default ``AutoConfig()``.
    n_types : int or "auto"
        Defect species in the map (:mod:`~napari_qpi.extraction.species`): 1 (default)
        fits one kernel to every scatterer; 2–4 fit one kernel and one scatterer map per
        species, started from the one-species result; ``"auto"`` chooses 1–4 by how well
        each predicts held-out pixels. With several species ``kernel`` gains a leading
        species axis and ``activation`` is one map per species; ``info`` holds
        ``n_types``, ``types_cv``, ``scatterers_per_type``, ``explained_per_type`` and
        ``separation``.

    Returns
    -------
    Extraction

    Raises
    ------
    ValueError
        For NaN/inf or constant data, wrong dimensions, a map smaller than the kernel
        window, an unknown method, a method that needs positions without them, or
        positions outside the map.

    Examples
    --------
    >>> from napari_qpi import simulate, extract
    >>> sim = simulate(seed=0)
    >>> res = extract(sim.observation, method="wiener", positions=sim.positions,
    ...               kernel_size=65)
    >>> res.kernel.shape
    (8, 65, 65)
    >>> res.info["relative_residual"] <= 1
    True
    """
    return drain(iter_extract(observation, method=method, positions=positions,
                              pixel_size=pixel_size, kernel_size=kernel_size, device=device,
                              weights=weights, sparsity=sparsity, rng=rng,
                              preprocess=preprocess, config=config, n_types=n_types))
