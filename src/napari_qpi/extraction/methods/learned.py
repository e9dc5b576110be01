"""Learned methods: two-stage (latent alignment) and the one-step baseline."""

from __future__ import annotations

import numpy as np

from ...progress import Progress
from ..registry import MethodResult, Problem
from ..scale import center_window


def run_network(problem: Problem, network: str, guide: np.ndarray | None = None,
                rotations: int | None = None, uncertainty: bool = True):
    """Run a network slice by slice; a MethodResult on the problem's kernel window.

    ``rotations`` and ``uncertainty`` as in :func:`~napari_qpi.models.inference.predict`
    (default: the map seen in four quarter turns, the kernels averaged)."""
    from ...models.inference import _guide_map as guide_map
    from ...models.inference import predict

    if guide is None:
        guide = guide_map(problem.positions, problem.observation.shape[-2:])
    gen = predict(problem.observation, method=network, guide=guide, device=problem.device,
                  weights=problem.weights, rotations=rotations, uncertainty=uncertainty)
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            kernel, unc, latent = stop.value
            break
        if isinstance(event, Progress):
            yield Progress(f"{network} network", event.step, event.total)
        else:  # (done, total)
            yield Progress(f"{network} network", *event)
    k = problem.kernel_size
    kernel = center_window(kernel, k)
    unc = None if unc is None else center_window(unc, k)
    return MethodResult(kernel, None, unc, latent)


def two_stage(problem: Problem):
    """Stage-2 encoder → latent → frozen stage-1 decoder (posterior mean)."""
    return (yield from run_network(problem, "two-stage"))


def one_step(problem: Problem):
    """The one-step baseline network."""
    return (yield from run_network(problem, "one-step"))
