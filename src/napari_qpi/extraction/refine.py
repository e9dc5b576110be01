"""Two-stage + refinement: make the learned kernel explain the map.

Start from the two-stage result; blind, first let the map guide the encoder (the
activation fitted with the blind kernel marks the scatterers, and the encoder's guided
mode reads the map again with them). Then alternate: fit the latent code through the
frozen stage-1 decoder, plus a small free correction, against the data with the shared
non-negative activation fixed; refit the activation by FISTA with the kernel fixed.

The fitted kernel lives on a working window about twice the returned one: real tails
reach far beyond any output window, and a forward model that cannot hold them pushes
their signal into the kernel's centre (a 65-px fit made kernels worse in a prototype).
Inside the returned window the free correction is penalised strongly, so the learned
prior keeps the kernel physical; outside it is only kept small and smooth.
"""

from __future__ import annotations

import numpy as np
import torch

from .._generators import drain
from .extract import Problem, Progress, fit_activation, register
from .fista import sparse_activation, support_mask
from .learned_methods import _crop, _run

#: Outer alternations, latent steps per alternation, FISTA iterations per alternation.
OUTER, INNER, FISTA_ITERS = 6, 15, 20
PRIOR_WEIGHT = 1e-3  # ‖z − z₀‖² per latent dimension
INNER_WEIGHT = 1.0  # ‖δ‖² inside the returned window, relative to the data term
OUTER_WEIGHT = 0.05  # ‖δ‖² outside it


def _peaks(activation: np.ndarray, fraction: float = 0.25) -> np.ndarray | None:
    """(N, 2) pixels of the activation's local maxima above ``fraction`` of its max."""
    from scipy.ndimage import maximum_filter

    if activation.max() <= 0:
        return None
    keep = (activation == maximum_filter(activation, size=5)) & (
        activation > fraction * activation.max())
    pos = np.argwhere(keep)
    return pos if len(pos) else None


def _conv(kernel: torch.Tensor, xf: torch.Tensor, grid, shape) -> torch.Tensor:
    """K ⊛ X on the padded grid: kernel (E, w, w) with centre at index 0."""
    e, w = kernel.shape[0], kernel.shape[-1]
    r = w // 2
    emb = kernel.new_zeros(e, *grid)
    idx0 = torch.arange(-r, r + 1) % grid[0]
    idx1 = torch.arange(-r, r + 1) % grid[1]
    emb[:, idx0[:, None], idx1[None, :]] = kernel
    y = torch.fft.irfft2(torch.fft.rfft2(emb) * xf, s=grid)
    return y[:, : shape[0], : shape[1]]


@register("refine", working_scale=True)
def refine(problem: Problem):
    """Two-stage result refined against the map through the learned decoder."""
    from ..models.inference import predict
    from ..models.weights import cached_set

    obs = problem.observation
    e, h, w = obs.shape
    k = min(problem.kernel_size, 65)
    kernel, unc, latent = yield from _run(problem, "two-stage")
    if problem.positions is None:
        # self-guidance: the blind kernel's activation marks the scatterers
        _, act, _ = fit_activation(obs, kernel, num_iter=40)
        peaks = _peaks(act)
        if peaks is not None:
            guide = np.zeros((h, w), np.float32)
            guide[peaks[:, 0], peaks[:, 1]] = 1.0
            kernel, unc, latent = drain(predict(obs, method="two-stage", guide=guide,
                                                device="cpu", weights=problem.weights))
    _, nets, _ = cached_set(problem.weights, "cpu")
    decode = nets["vae"].decode
    k_model = kernel.shape[-1] if latent is None else 65

    # guided: scatterers sit within a pixel of the given positions
    support = None if problem.positions is None else support_mask(problem.positions, (h, w))

    # working window: about twice the model window, odd, no larger than the map allows
    ww = min(2 * k_model - 1, (min(h, w) // 2) * 2 + 1)
    kernel_np, act, _ = fit_activation(obs, kernel, support=support)
    sign = 1.0 if np.sum(kernel_np * kernel) >= 0 else -1.0
    y = torch.from_numpy(obs).float()
    ynorm = float((y**2).sum())
    grid = tuple(int(s) for s in (h + ww - 1, w + ww - 1))
    z0 = torch.from_numpy(latent).float()
    z = z0.clone().requires_grad_(True)
    delta = torch.zeros(e, ww, ww, requires_grad=True)
    pad = (ww - k_model) // 2
    rr = torch.arange(ww) - ww // 2
    inner = ((rr[:, None].abs() <= k_model // 2) & (rr[None, :].abs() <= k_model // 2)).float()
    opt = torch.optim.Adam([z, delta], lr=0.02)

    def work_kernel() -> torch.Tensor:
        base = torch.nn.functional.pad(sign * decode(z), (pad, pad, pad, pad))
        return base + delta

    def residual_norm(kern: np.ndarray, x: np.ndarray) -> float:
        from .operator import ConvOperator

        return float(np.linalg.norm(obs - ConvOperator(kern, (h, w)).forward(x))
                     / np.sqrt(ynorm))

    with torch.no_grad():
        kw = work_kernel().numpy()
    start_kernel = kw
    before = residual_norm(kw, act)
    for outer in range(OUTER):
        yield Progress("refine: latent fit against the map", outer, OUTER)
        xf = torch.fft.rfft2(torch.nn.functional.pad(
            torch.from_numpy(act).float(), (0, grid[1] - w, 0, grid[0] - h)))
        for _ in range(INNER):
            kern = work_kernel()
            fit = _conv(kern, xf, grid, (h, w))
            loss = (0.5 * ((fit - y) ** 2).sum() / ynorm
                    + PRIOR_WEIGHT * ((z - z0) ** 2).mean()
                    + INNER_WEIGHT * ((delta * inner) ** 2).sum()
                    + OUTER_WEIGHT * ((delta * (1 - inner)) ** 2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            kw = work_kernel().numpy()
        kw = kw / (np.linalg.norm(kw) / np.sqrt(e) + 1e-12)
        act = sparse_activation(obs, kw, sparsity=0.15, num_iter=FISTA_ITERS,
                                support=support, x0=act * (np.abs(act).max() > 0))
    yield Progress("refine: latent fit against the map", OUTER, OUTER)
    # score the end point as the start was scored (a full activation fit)
    act = sparse_activation(obs, kw, sparsity=0.15, num_iter=2 * FISTA_ITERS,
                            support=support, x0=act)
    after = residual_norm(kw, act)
    if after > before:  # never return a kernel that explains the map worse
        kw, after = start_kernel, before
    o = (ww - k) // 2
    out = kw[:, o:o + k, o:o + k]
    problem.info.update({"refine_residual_before": before, "refine_residual_after": after})
    with torch.no_grad():
        lat = z.numpy().copy()
    return out, None if unc is None else _crop(unc, k), lat
