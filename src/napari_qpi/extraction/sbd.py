"""Multi-slice sparse blind deconvolution (SBD), after Cheung et al. (2020).

Model and objective (Cheung et al., "Dictionary learning in Fourier-transform scanning
tunneling spectroscopy", Nat. Commun. 11, 1081 (2020); written from the paper)::

    Y_E ≈ A_E ⊛ X + b_E,      X ≥ 0 shared by every energy,   ‖A‖_F = 1 over all E

    min  ½ Σ_E ‖A_E ⊛ X + b_E − Y_E‖²  +  λ Σ X        (X ≥ 0, A on the sphere)

The per-energy offsets b_E are minimised in closed form (every residual has its per-slice
mean removed). The solver alternates

- a few FISTA steps on X with step 1/L, L = max_q Σ_E |Â_E(q)|²;
- one Riemannian gradient step on A: the Euclidean gradient projected on the sphere's
  tangent space, a step retracted by normalisation, with a backtracking (Armijo) line search.

Phase I runs at λ on the k×k kernel. Phase II pads the kernel by ⌊k/4⌋ per side (the paper
pads by ⌈k/2⌉; with k = 65 on a 128-px map that kernel is wider than the map, slower and a
little worse here), lowers λ geometrically. After every kernel step of both phases the
kernel is re-centred on its scatterer, shifting X the opposite way (so A ⊛ X is unchanged).
The scatterer is the energy centroid of the kernel's core (:func:`core_offset`), not the
paper's k-window of largest ℓ1 mass: a QPI kernel's slowly decaying tail holds most of its
ℓ1 mass, so that window drifts by up to half a window and the returned kernel came back
off-centre by 10–30 px. The default λ scales with the noise level estimated from the
highest spatial frequencies (:func:`noise_level`, :func:`default_sparsity`). Several
restarts run together as one batch (on CPU or GPU); the one with the lowest final
objective wins.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from ..progress import Progress, checkpoint, drain
from .fista import centred_residual, fista
from .noise import default_sparsity, noise_level
from .operator import ConvOperator, fft_grid
from .recenter import normalise, recenter

__all__ = ["SBDResult", "activation_gradient", "iter_sbd", "kernel_gradient", "objective",
           "sbd"]


@dataclass(frozen=True)
class SBDResult:
    """Result of :func:`sbd`.

    Attributes
    ----------
    kernel : (E, k, k) ndarray
        ‖kernel‖_F = 1 over all energies, scatterer on the centre pixel, positive activation.
    activation : (H, W) ndarray
        Non-negative scatterer map, in the units of the observation.
    bias : (E,) ndarray
        Per-energy offsets b_E.
    objective : float
        Final objective of the winning restart.
    objectives : (R,) ndarray
        Final objective of every restart.
    kernels : (R, E, k, k) ndarray
        The final kernel of every restart (unit norm), in the order of the starts:
        ``restarts`` drawn ones first, then ``init_kernels``.
    """

    kernel: np.ndarray
    activation: np.ndarray
    bias: np.ndarray
    objective: float
    objectives: np.ndarray
    kernels: np.ndarray | None = None


# --- objective and gradients (the solver calls exactly these) ------------------------------
def objective(op: ConvOperator, x: torch.Tensor, y: torch.Tensor,
              sparsity: float | torch.Tensor, mask=None) -> torch.Tensor:
    """½ Σ_E ‖M(A_E ⊛ X + b_E − Y_E)‖² + λ Σ X, per batch element (b optimal)."""
    r = centred_residual(op, x, y, mask)
    return 0.5 * (r**2).sum(dim=(-3, -2, -1)) + sparsity * x.sum(dim=(-2, -1))


def kernel_gradient(op: ConvOperator, x: torch.Tensor, y: torch.Tensor,
                    mask=None) -> torch.Tensor:
    """Euclidean gradient of the data term in A: (…, E, k, k)."""
    return op.kernel_adjoint(centred_residual(op, x, y, mask), x)


def activation_gradient(op: ConvOperator, x: torch.Tensor, y: torch.Tensor,
                        mask=None) -> torch.Tensor:
    """Gradient of the data term in X: Aᵀ M(A ⊛ X + b − Y), (…, H, W)."""
    return op.adjoint(centred_residual(op, x, y, mask))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=(-3, -2, -1))


def kernel_step(op: ConvOperator, x: torch.Tensor, y: torch.Tensor, step: torch.Tensor,
                max_backtrack: int = 8, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One Riemannian gradient step on the sphere with Armijo backtracking, per restart.

    Uses :func:`kernel_gradient` (the gradient the finite-difference test checks) and
    the operator's :meth:`~ConvOperator.with_kernel` for every trial.
    """
    kernel = op.kernel
    f0 = objective(op, x, y, 0.0, mask)
    grad = kernel_gradient(op, x, y, mask)
    rgrad = grad - _dot(grad, kernel)[..., None, None, None] * kernel
    gnorm2 = (rgrad**2).sum(dim=(-3, -2, -1))
    new = kernel.clone()
    accepted = torch.zeros_like(f0, dtype=torch.bool)
    step = step.clone()
    for _ in range(max_backtrack):
        checkpoint()  # each trial is a whole forward pass: ~0.1 s on a 64×256² grid
        trial = normalise(kernel - step[..., None, None, None] * rgrad)
        ft = objective(op.with_kernel(trial), x, y, 0.0, mask)
        ok = (ft <= f0 - 1e-4 * step * gnorm2) & ~accepted
        new[ok] = trial[ok]
        accepted |= ok
        if bool(accepted.all()):
            break
        step = torch.where(accepted, step, step / 2)
    # grow the step where the first try was accepted, keep it where we backtracked
    return new, step * 1.5


def _init_kernels(y: torch.Tensor, size: int, restarts: int, rng: np.random.Generator,
                  init: str) -> torch.Tensor:
    e, h, w = y.shape
    if init == "gaussian":
        a = torch.from_numpy(rng.normal(size=(restarts, e, size, size))).to(y)
        return normalise(a)
    # patches of the data around pixels of high local signal energy
    energy = (y**2).sum(0)[None, None]
    energy = torch.nn.functional.avg_pool2d(energy, 5, stride=1, padding=2)[0, 0]
    r = size // 2
    pad = torch.nn.functional.pad(y, (r, r, r, r))
    weights = energy.flatten().cpu().double().numpy()
    weights = weights / weights.sum()
    picks = rng.choice(h * w, size=restarts, replace=False, p=weights)
    taper = torch.hann_window(size + 2, periodic=False, dtype=y.dtype, device=y.device)[1:-1]
    taper = taper[:, None] * taper[None, :]
    patches = [pad[:, p // w : p // w + size, p % w : p % w + size] * taper for p in picks]
    a = torch.stack(patches)
    a = a + 0.05 * a.flatten(1).std(-1)[:, None, None, None] * torch.from_numpy(
        rng.normal(size=a.shape)).to(y)
    return normalise(a)


# --- driver --------------------------------------------------------------------------------
def _phase(name: str, a, x, y, step, lams, activation_iter: int, rc: int, done: int,
           total: int, mask=None):
    """One SBD phase: per λ in ``lams``, FISTA on X, a kernel step, re-centring."""
    grid = fft_grid(y.shape[-2:], a.shape[-1])
    for it, lam in enumerate(lams):
        op = ConvOperator(a, y.shape[-2:], grid)
        x = fista(op, y, sparsity=lam, num_iter=activation_iter, x0=x, mask=mask)
        if bool(torch.isnan(step).any()):
            lx = (op.fft(x).abs() ** 2).amax(dim=(-2, -1))
            step = torch.where(torch.isnan(step), 1.0 / lx.clamp_min(1e-12), step)
        a, step = kernel_step(op, x, y, step, mask=mask)
        a, x = recenter(a, x, rc)
        yield Progress(name, done + it + 1, total)
    return a, x, step


def iter_sbd(
    observation,
    kernel_size: int,
    *,
    sparsity: float | None = None,
    sparsity_final: float | None = None,
    restarts: int = 3,
    num_iter: int = 100,
    refine_iter: int = 50,
    activation_iter: int = 3,
    init: str = "patch",
    init_kernels=None,
    rng=None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    pad: int | None = None,
    core_radius: int | None = None,
    mask=None,
) -> Generator[Progress, None, SBDResult]:
    """Generator form of :func:`sbd`: yields :class:`~napari_qpi.progress.Progress`.

    Parameters are those of :func:`sbd`.
    """
    y_np = np.asarray(observation, dtype=float)
    if y_np.ndim == 2:
        y_np = y_np[None]
    if y_np.ndim != 3:
        raise ValueError(f"observation must be (H, W) or (E, H, W), got shape {y_np.shape}")
    if kernel_size % 2 == 0 or kernel_size < 3 or kernel_size > min(y_np.shape[-2:]):
        raise ValueError(f"kernel_size={kernel_size} must be odd, ≥ 3 and ≤ the map size")
    if init not in ("patch", "gaussian"):
        raise ValueError(f"init={init!r} must be 'patch' or 'gaussian'")
    if restarts < 0 or (restarts == 0 and init_kernels is None):
        raise ValueError(f"restarts must be ≥ 1 (or ≥ 0 with init_kernels), got {restarts}")
    rng = np.random.default_rng(rng)
    e, h, w = y_np.shape
    y_np = y_np - y_np.mean(axis=(-2, -1), keepdims=True)
    # unit RMS per pixel and slice: λ means the same at every scale of input
    scale = float(np.sqrt((y_np**2).mean())) or 1.0
    y = torch.as_tensor(y_np / scale, dtype=dtype, device=device)
    if mask is not None:
        mask = torch.as_tensor(np.asarray(mask, dtype=float), dtype=dtype, device=device)
    if sparsity is None:
        sparsity = default_sparsity(noise_level(y_np / scale))
    sparsity = float(sparsity)
    sparsity_final = 0.5 * sparsity if sparsity_final is None else float(sparsity_final)

    k = kernel_size
    pad = k // 4 if pad is None else int(pad)
    rc = max(3, (3 * k) // 16) if core_radius is None else int(core_radius)
    total = num_iter + refine_iter

    starts = []
    if restarts:
        starts.append(_init_kernels(y, k, restarts, rng, init))
    if init_kernels is not None:
        given = torch.as_tensor(np.asarray(init_kernels, dtype=float), dtype=dtype,
                                device=device).reshape(-1, e, k, k)
        starts.append(normalise(given))
    a = torch.cat(starts)
    n = a.shape[0]
    x = torch.zeros((n, h, w), dtype=dtype, device=device)
    step = torch.full((n,), float("nan"), dtype=dtype, device=device)
    a, x, step = yield from _phase("SBD phase I", a, x, y, step, [sparsity] * num_iter,
                                   activation_iter, rc, 0, total, mask)
    # phase II: padded kernel, λ lowered geometrically, re-centred every step
    a = normalise(torch.nn.functional.pad(a, (pad, pad, pad, pad)))
    ratio = (sparsity_final / sparsity) ** (1 / max(refine_iter - 1, 1)) if sparsity else 1.0
    lams = [sparsity * ratio**i for i in range(refine_iter)]
    a, x, step = yield from _phase("SBD phase II", a, x, y, step, lams, activation_iter, rc,
                                   num_iter, total, mask)
    lam = lams[-1] if lams else sparsity
    op = ConvOperator(a, (h, w))
    x = fista(op, y, sparsity=lam, num_iter=4 * activation_iter, x0=x, mask=mask)

    obj = objective(op, x, y, lam, mask)
    best = int(torch.argmin(obj))
    a_best, x_best = a[best], x[best]
    crops = normalise(a[..., pad : pad + k, pad : pad + k])
    crop = crops[best]
    bias = (y - op.with_kernel(a_best).forward(x_best)).mean(dim=(-2, -1)) * scale
    return SBDResult(
        kernel=crop.double().cpu().numpy(),
        activation=(x_best * scale).double().cpu().numpy(),
        bias=bias.double().cpu().numpy(),
        objective=float(obj[best]),
        objectives=obj.double().cpu().numpy(),
        kernels=crops.double().cpu().numpy(),
    )


def sbd(observation, kernel_size: int, **kwargs) -> SBDResult:
    """Sparse blind deconvolution of an energy stack into one kernel and one activation.

    Parameters
    ----------
    observation : (E, H, W) or (H, W) array_like
        dI/dV maps; per-slice means are removed, the whole stack is scaled to unit RMS.
    kernel_size : int
        Odd window k of the returned kernel.
    sparsity : float, optional
        λ of phase I in units of the per-pixel RMS of the stack (the λ of
        :func:`~napari_qpi.extraction.fista.fista` for the unit-RMS stack) (keyword-only, like all
        below); default ``default_sparsity(noise_level(stack))``.
    sparsity_final : float, optional
        λ at the end of phase II (reached geometrically); default half of ``sparsity``.
    restarts : int
        Random restarts, run together as a batch; the lowest objective wins.
    num_iter, refine_iter : int
        Outer iterations of phase I and phase II.
    activation_iter : int
        FISTA steps on X per outer iteration.
    init : {"patch", "gaussian"}
        Kernel initialisation: tapered data patches around pixels of high signal energy,
        or Gaussian noise.
    rng : int or numpy Generator, optional
        Seed of the restarts.
    device : str or torch.device
        "cpu", "cuda", ...
    dtype : torch.dtype
    pad : int, optional
        Padding per side of the phase-II kernel; default ``kernel_size // 4``.
    core_radius : int, optional
        Radius of the disc whose energy centroid is re-centred on the centre pixel;
        default ``max(3, 3 * kernel_size // 16)``.
    init_kernels : (R0, E, k, k) array_like, optional
        Starting kernels (e.g. the learned and power estimates) run as extra restarts
        beside the ``restarts`` drawn by ``init``.
    mask : (H, W) array of 0/1, optional
        Pixels in the data term; the others are never seen (cross-validation).

    Returns
    -------
    SBDResult

    Examples
    --------
    >>> from napari_qpi import simulate
    >>> sim = simulate(shape=(48, 48), kernel_size=15, n_scatterers=6, seed=0)
    >>> res = sbd(sim.observation, 15, num_iter=5, refine_iter=2, rng=0)
    >>> res.kernel.shape
    (8, 15, 15)
    """
    return drain(iter_sbd(observation, kernel_size, **kwargs))
