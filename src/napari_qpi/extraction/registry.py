"""The methods :func:`~napari_qpi.extract` can run, and what each one needs.

Like napari's manifest, a method is a name, a ``"module:function"`` target that is imported
only when the method runs, and the capabilities a caller needs to know beforehand (does it
need scatterer positions, is it learned, does it work at the networks' working scale).
Callers — the CLI, the napari widget, the benchmark — read these fields; none of them
tests a method's name. Importing this module imports no method and no torch.

A method is a generator function ``fn(problem: Problem)`` that yields
:class:`~napari_qpi.progress.Progress` and returns a :class:`MethodResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import KW_ONLY, dataclass, field
from importlib import import_module

import numpy as np

from .config import AutoConfig

__all__ = ["METHODS", "Method", "MethodResult", "Problem", "get_method", "method_names"]


@dataclass(frozen=True)
class Problem:
    """A validated, normalised extraction problem handed to each method (a value: a
    method that needs a variant makes one with :func:`dataclasses.replace`).

    Attributes
    ----------
    observation : (E, H, W) ndarray
        float64 maps, per-slice mean removed, divided by one global scale (the RMS of the
        whole stack), so relative amplitudes across energies are kept.
    positions : (N, 2) ndarray or None
        Known scatterer pixels (row, col), in the observation's pixels.
    kernel_size : int
        Odd kernel window the method returns.
    device : str
        Torch device for learned methods and torch solvers.
    pixel_size : float or None
        Å per pixel (None: unknown).
    noise : float or (E,) ndarray
        Noise level per pixel, in the units of ``observation``: one level per energy
        (what ``extract`` passes: read from held-out pixels, :mod:`.sparsity`) or one
        for all.
    weights : str
        Weight set of learned methods.
    rng : int
        Seed of any randomness a method uses.
    max_window : int or None
        Set when ``kernel_size`` was chosen from the data: the largest window (the
        learned decoders' 65 px, or the map), which methods that can afford it use for
        candidates whose tails reach further.
    config : AutoConfig
        The rules and budgets of the automatic choices (:mod:`.config`).
    """

    observation: np.ndarray
    positions: np.ndarray | None
    kernel_size: int
    _: KW_ONLY
    device: str = "cpu"
    pixel_size: float | None = None
    noise: float | np.ndarray = 0.0
    weights: str = "default"
    rng: int = 0
    max_window: int | None = None  # with an automatic window: the largest window allowed
    config: AutoConfig = AutoConfig()


@dataclass
class MethodResult:
    """What a method found: its kernel and, where it has one, its own activation.

    Attributes
    ----------
    kernel : (E, k, k) ndarray
        Scatterer on the centre pixel; any scale and sign (the data-consistent fit in
        :func:`~napari_qpi.extract` sets amplitudes and signs per energy).
    activation : (H, W) ndarray or None
        The method's own non-negative scatterer map, if it fits one (kept as a candidate
        start of the final fit, never thrown away).
    uncertainty : (E, k, k) ndarray or None
        Per-pixel spread of the kernel (learned methods).
    latent : (E, d) ndarray or None
        Latent codes belonging to ``kernel`` (learned methods).
    info : dict
        Diagnostics (merged into ``Extraction.info``).
    zoom : float
        The scale the kernel was read at, mapped back to the problem's pixels: 1 for the
        map as it is, else the working-scale factor (:func:`~.run.run_method`). A latent
        belongs to the map at this scale.
    """

    kernel: np.ndarray
    activation: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    latent: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    zoom: float = 1.0


@dataclass(frozen=True)
class Method:
    """One extraction method and its capabilities.

    Attributes
    ----------
    name : str
        What users type (``method="two-stage"``).
    target : str
        ``"package.module:function"``, imported lazily by :meth:`load`.
    needs_positions : bool
        Cannot run blind: scatterer positions are required.
    accepts_positions : bool
        Uses positions when given (guided mode).
    learned : bool
        Runs trained networks (loads torch and the weights).
    working_scale : bool
        Sees the map resampled to the networks' working scale when the pixel size is
        known (see :mod:`.scale`).
    max_kernel_size : int or None
        Largest window the method can return by itself (None: any); larger requests are
        rejected with a clear message.
    windowed : bool
        Its estimate depends on the window (a blind solver has more room to fit noise in
        a larger one): with ``kernel_size=None`` it runs at the window estimated from the
        data. Other methods estimate the largest window and ``extract`` keeps it unless
        its crop to the estimated window predicts held-out pixels clearly better
        (``AutoConfig.window_margin``).
    uses_torch : bool
        Runs torch (networks or the torch solvers): it gets the CPU threads chosen by
        :mod:`.threads`.
    cost : str
        Rough cost on a 128² slice on two CPU cores, for tooltips.
    description : str
        One sentence for help texts and tooltips.
    """

    name: str
    target: str
    needs_positions: bool = False
    accepts_positions: bool = True
    learned: bool = False
    working_scale: bool = False
    max_kernel_size: int | None = None
    windowed: bool = False
    uses_torch: bool = True
    cost: str = ""
    description: str = ""

    def load(self) -> Callable[..., Generator]:
        """Import and return the method's generator function."""
        module, _, attr = self.target.partition(":")
        return getattr(import_module(module), attr)

    def help(self) -> str:
        """A one-paragraph help text: description, positions, cost."""
        needs = ("needs scatterer positions" if self.needs_positions else
                 "blind, or guided by positions" if self.accepts_positions else "blind")
        return f"{self.name}: {self.description} ({needs}; {self.cost})"


_M = "napari_qpi.extraction.methods."
#: Whole runs of the quick methods: the kernel itself takes milliseconds; the automatic
#: window and the noise level read from held-out pixels take the rest (2 cores, 128²).
_QUICK = "≈ 5–15 s per map, the kernel itself milliseconds"

#: Every method :func:`~napari_qpi.extract` knows, by name, in the order shown to users.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("auto", _M + "auto:auto", learned=True, windowed=True,
           cost="≈ 6–8 s per map, ≈ 30 s per 8 energies",
           description="runs the candidates (two-stage, power, their SBD refinements, the "
                       "latent fit from four views) and keeps the latent fit unless another "
                       "predicts held-out pixels of your map clearly better"),
    Method("two-stage", _M + "learned:two_stage", learned=True, working_scale=True,
           max_kernel_size=65, cost=_QUICK,
           description="learned latent prior of Ji et al. 2025: an encoder maps the map "
                       "into the latent space of a kernel VAE"),
    Method("refine", _M + "refine:refine", learned=True, windowed=True,
           cost="≈ 6–8 s per map, ≈ 30 s per 8 energies",
           description="sparse blind deconvolution started from the learned and power "
                       "kernels, with the learned decoder as a soft prior"),
    Method("sbd", _M + "classical:sbd", accepts_positions=False, windowed=True,
           cost="≈ 2–5 s",
           description="multi-slice sparse blind deconvolution (Cheung et al. 2020), "
                       "classical, blind"),
    Method("power", _M + "classical:power", accepts_positions=False, uses_torch=False,
           cost=_QUICK,
           description="zero-phase kernel from the map's power spectrum: symmetric, "
                       "layout-independent, a floor for the others"),
    Method("wiener", _M + "classical:wiener", needs_positions=True, uses_torch=False,
           cost=_QUICK,
           description="Wiener deconvolution with known scatterer positions of equal "
                       "strength, classical"),
    Method("one-step", _M + "learned:one_step", learned=True, working_scale=True,
           max_kernel_size=65, cost=_QUICK,
           description="direct network baseline of the paper (no latent prior)"),
)}


def method_names() -> list[str]:
    """Names of every registered method, in display order."""
    return list(METHODS)


def get_method(name) -> Method:
    """The registered :class:`Method` called ``name``, or a ValueError listing the choices."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"method={name!r} is unknown; choose one of {', '.join(METHODS)}")
    return METHODS[name]
