"""``extract``: kernel, activation and residual from an observation, by any method."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from .._generators import drain
from .fista import sparse_activation, support_mask
from .operator import ConvOperator
from .scale import kernel_to_map, resample, working_factor

DEFAULT_KERNEL_SIZE = 65


@dataclass(frozen=True)
class Progress:
    """One progress event: ``step`` of ``total`` done, with a message."""

    message: str
    step: int
    total: int


@dataclass(frozen=True)
class Extraction:
    """Result of :func:`extract`.

    Attributes
    ----------
    kernel : (E, k, k) or (k, k) ndarray
        Unit L2 norm per energy, scatterer on the centre pixel, sign such that the
        scatterer amplitudes are positive.
    activation : (H, W) ndarray
        Sparse non-negative scatterer map shared by every energy.
    residual : ndarray
        observation − (kernel ⊛ activation + per-energy offset), like the observation.
    uncertainty : ndarray or None
        Per-pixel kernel uncertainty (posterior spread), like ``kernel``.
    latent : ndarray or None
        Latent codes (E, d) of model-based methods.
    method : str
    info : dict
        Timings and diagnostics (``relative_residual``, ``seconds``...).
    """

    kernel: np.ndarray
    activation: np.ndarray
    residual: np.ndarray
    uncertainty: np.ndarray | None
    latent: np.ndarray | None
    method: str
    info: dict = field(default_factory=dict)


@dataclass
class Problem:
    """A validated, normalised extraction problem handed to each method."""

    observation: np.ndarray  # (E, H, W) float64, per-slice mean 0, std 1
    positions: np.ndarray | None  # (N, 2) float
    kernel_size: int
    device: str
    pixel_size: float | None
    offsets: np.ndarray  # (E,) removed means
    scales: np.ndarray  # (E,) removed stds
    weights: str = "default"  # weight set of learned methods
    info: dict = field(default_factory=dict)  # diagnostics a method reports


#: method name → function(problem) yielding Progress and returning (kernel, uncertainty,
#: latent); filled by ``register``.
METHODS: dict[str, Callable[[Problem], Generator]] = {}


#: Methods that work at the learned working scale when the pixel size is known.
SCALED: set = set()


def register(name: str, *, working_scale: bool = False):
    """Decorator adding an extraction method under ``name``.

    ``working_scale=True``: given a pixel size, the map is resampled to the working
    scale of :mod:`.scale` before the method runs, and its kernel mapped back.
    """

    def deco(fn):
        METHODS[name] = fn
        if working_scale:
            SCALED.add(fn)
        return fn

    return deco


def _as_array(observation):
    from ..io.stack import QPIStack

    if isinstance(observation, QPIStack):
        return observation.data, observation.pixel_size
    return observation, None


def validate(observation, positions, kernel_size, method) -> tuple[np.ndarray, np.ndarray | None]:
    """Check user input; return (E, H, W) float64 and (N, 2) positions or raise ValueError."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {', '.join(METHODS)}")
    try:
        obs = np.asarray(observation, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("observation must be a numeric (Y, X) or (E, Y, X) array") from None
    if obs.ndim not in (2, 3):
        raise ValueError(f"observation must be a (Y, X) map or an (E, Y, X) stack; "
                         f"got an array of shape {obs.shape}")
    if not np.all(np.isfinite(obs)):
        raise ValueError("observation contains NaN or inf; crop or fill those pixels first")
    obs3 = obs[None] if obs.ndim == 2 else obs
    h, w = obs3.shape[-2:]
    if min(h, w) < kernel_size:
        raise ValueError(f"observation is {h}×{w} px, smaller than the kernel window "
                         f"({kernel_size} px); pass a smaller kernel_size or a larger map")
    if kernel_size % 2 == 0 or kernel_size < 3:
        raise ValueError(f"kernel_size={kernel_size} must be odd and ≥ 3")
    pos = None
    if positions is not None:
        pos = np.asarray(positions, dtype=float)
        if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) == 0:
            raise ValueError(f"positions must be an (N, 2) array of (row, col) pixels, "
                             f"got shape {pos.shape}")
        if not np.all(np.isfinite(pos)) or np.any(pos < -0.5) or np.any(
                pos[:, 0] > h - 0.5) or np.any(pos[:, 1] > w - 0.5):
            raise ValueError(f"positions must lie inside the {h}×{w} map "
                             f"(rows 0..{h - 1}, cols 0..{w - 1})")
    return obs3, pos


def iter_extract(
    observation,
    *,
    method: str = "two-stage",
    positions=None,
    pixel_size: float | None = None,
    kernel_size: int | None = None,
    device: str | None = None,
    weights: str = "default",
) -> Generator[Progress, None, Extraction]:
    """Generator form of :func:`extract`: yields :class:`Progress`, returns the result.

    Closing the generator between events cancels the work.
    """
    obs_in, stack_pixel = _as_array(observation)
    pixel_size = pixel_size if pixel_size is not None else stack_pixel
    explicit = kernel_size is not None
    if not explicit:
        shape = np.shape(obs_in)
        side = min(shape[-2:]) if len(shape) >= 2 else DEFAULT_KERNEL_SIZE
        # default window: 65 px, or the largest odd window a small map holds
        kernel_size = min(DEFAULT_KERNEL_SIZE, side - (1 - side % 2))
    kernel_size = int(kernel_size)
    obs, pos = validate(obs_in, positions, kernel_size, method)
    t0 = time.perf_counter()
    offsets = obs.mean(axis=(-2, -1))
    scales = obs.std(axis=(-2, -1))
    scales = np.where(scales > 0, scales, 1.0)
    norm = (obs - offsets[:, None, None]) / scales[:, None, None]
    factor = 1.0
    work, work_pos, work_k = norm, pos, kernel_size
    scaled = pixel_size is not None and METHODS[method] in SCALED
    if scaled:
        # learned methods see the map at their working scale (see .scale)
        factor = working_factor(norm)
        work = resample(norm, factor)
        work = (work - work.mean((-2, -1), keepdims=True)) / (
            work.std((-2, -1), keepdims=True) + 1e-12)
        work_pos = None if pos is None else np.clip(
            pos * factor, 0, np.array(work.shape[-2:]) - 1)
        work_k = DEFAULT_KERNEL_SIZE
    problem = Problem(work, work_pos, work_k, device or "cpu", pixel_size, offsets, scales,
                      weights)
    kernel, uncertainty, latent = yield from METHODS[method](problem)
    if scaled:
        kernel = kernel_to_map(np.asarray(kernel), factor, kernel_size)
        if uncertainty is not None:
            uncertainty = kernel_to_map(np.asarray(uncertainty), factor, kernel_size)
    t_kernel = time.perf_counter() - t0

    kernel = np.asarray(kernel, dtype=float)
    kernel = kernel / (np.linalg.norm(kernel, axis=(-2, -1), keepdims=True) + 1e-30)
    yield Progress("activation (sparse deconvolution)", 0, 1)
    # guided: the activation may only sit within a pixel of the given positions
    support = None if pos is None else support_mask(pos, norm.shape[-2:])
    kernel, activation, residual = fit_activation(norm, kernel, support=support)
    yield Progress("activation (sparse deconvolution)", 1, 1)
    residual = residual * scales[:, None, None]
    rel = float(np.linalg.norm(residual) / (np.linalg.norm(obs - offsets[:, None, None]) + 1e-30))
    squeeze = np.ndim(obs_in) == 2  # a 2-D map in, 2-D kernel and residual out
    if squeeze:
        kernel, residual = kernel[0], residual[0]
        uncertainty = None if uncertainty is None else uncertainty[0]
    info = {"seconds": time.perf_counter() - t0, "seconds_kernel": t_kernel,
            "relative_residual": rel, "pixel_size": pixel_size, "working_zoom": factor,
            **problem.info}
    return Extraction(kernel.astype(np.float32), activation.astype(np.float32),
                      residual.astype(np.float32), uncertainty, latent, method, info)


def fit_activation(norm: np.ndarray, kernel: np.ndarray, *, sparsity: float = 0.15,
                   num_iter: int = 80, support: np.ndarray | None = None):
    """Fix the kernel's sign, fit the shared activation, return the residual.

    The sign is the one under which the strongest matched-filter responses are
    positive; then a non-negative FISTA fits the activation (restricted to
    ``support`` when scatterer positions are known).
    """
    op = ConvOperator(kernel, norm.shape[-2:])
    corr = op.adjoint(norm)
    if support is not None:
        strongest = support
    else:
        top = np.sort(np.abs(corr).ravel())[-max(5, corr.size // 200)]
        strongest = np.abs(corr) >= top
    if corr[strongest].sum() < 0:
        kernel = -kernel
    activation = sparse_activation(norm, kernel, sparsity=sparsity, num_iter=num_iter,
                                   support=support)
    # debias: ℓ1 shrinks every amplitude; refit them without it on the found support
    activation = sparse_activation(norm, kernel, sparsity=0.0, num_iter=num_iter // 2,
                                   support=activation > 0, x0=activation)
    residual = norm - ConvOperator(kernel, norm.shape[-2:]).forward(activation)
    residual = residual - residual.mean(axis=(-2, -1), keepdims=True)
    return kernel, activation, residual


def extract(
    observation,
    *,
    method: str = "two-stage",
    positions=None,
    pixel_size: float | None = None,
    kernel_size: int | None = None,
    device: str | None = None,
    weights: str = "default",
) -> Extraction:
    """Extract the single-scatterer kernel from an observation.

    Parameters
    ----------
    observation : (Y, X) or (E, Y, X) array_like, or QPIStack
        dI/dV map(s); one scatterer map is shared by every energy.
    method : str
        ``"two-stage"`` (learned latent prior, blind or guided), ``"one-step"``
        (direct network baseline), ``"wiener"`` (classical, needs ``positions``).
    positions : (N, 2) array_like, optional
        Known scatterer pixels (row, col); switches learned methods to guided mode.
    pixel_size : float, optional
        Å per pixel of the observation (taken from a QPIStack when given one). When
        known, learned methods resample a map whose mean QPI wavelength lies outside
        4–20 px into that band (their working scale) and map the kernel back: the
        same surface sampled at two pixel sizes gives the same kernel in Å.
    kernel_size : int, optional
        Odd window of the returned kernel (default 65 px, or the largest odd window
        that fits a smaller map).
    device : str, optional
        Torch device for learned methods ("cpu", "cuda", "mps"); default CPU.
    weights : str
        Weight set of learned methods: ``"default"`` (trained on every family),
        ``"seen"`` (seen split only, for benchmarks) or a folder from
        ``napari-qpi train``.

    Returns
    -------
    Extraction

    Raises
    ------
    ValueError
        For NaN/inf, wrong dimensions, a map smaller than the kernel window, an
        unknown method, or positions outside the map.

    Examples
    --------
    >>> from napari_qpi import simulate, extract
    >>> sim = simulate(seed=0)
    >>> res = extract(sim.observation, method="wiener", positions=sim.positions)
    >>> res.kernel.shape
    (8, 65, 65)
    """
    return drain(iter_extract(observation, method=method, positions=positions,
                              pixel_size=pixel_size, kernel_size=kernel_size, device=device,
                              weights=weights))


# method modules register themselves on import
from . import learned_methods, refine, classical_methods  # noqa: E402,F401,I001
