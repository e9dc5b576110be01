"""Learned extraction methods: two-stage (latent alignment) and the one-step baseline."""

from __future__ import annotations

import numpy as np

from .extract import Problem, Progress, register


def _run(problem: Problem, method: str):
    from ..models.inference import _guide_map, predict

    k = problem.kernel_size
    if k > 65:
        raise ValueError(f"kernel_size={k} is larger than the model's 65-px window; "
                         "use kernel_size ≤ 65 or a classical method")
    guide = _guide_map(problem.positions, problem.observation.shape[-2:])
    gen = predict(problem.observation, method=method, guide=guide, device=problem.device,
                  weights=problem.weights)
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            kernel, unc, latent = stop.value
            break
        yield Progress(f"{method} network", done, total)
    if k < kernel.shape[-1]:
        # the window shrinks around the centre pixel, which stays the scatterer
        kernel = _crop(kernel, k)
        unc = None if unc is None else _crop(unc, k)
    return kernel, unc, latent


def _crop(a: np.ndarray, k: int) -> np.ndarray:
    o = (a.shape[-1] - k) // 2
    return a[..., o:o + k, o:o + k]


@register("two-stage", working_scale=True)
def two_stage(problem: Problem):
    """Stage-2 encoder → latent → frozen stage-1 decoder (posterior mean)."""
    return (yield from _run(problem, "two-stage"))


@register("one-step", working_scale=True)
def one_step(problem: Problem):
    """The one-step baseline network."""
    return (yield from _run(problem, "one-step"))
