"""Learned methods: two-stage (latent alignment) and the one-step baseline."""

from __future__ import annotations

import numpy as np

from ..registry import MethodResult, Problem
from ..scale import center_window


def run_network(problem: Problem, network: str, guide: np.ndarray | None = None,
                rotations: int | None = None, uncertainty: bool = True):
    """Run a network slice by slice; a MethodResult on the problem's kernel window.

    ``rotations`` and ``uncertainty`` as in :func:`~napari_qpi.models.inference.predict`
    (default: the map seen in four quarter turns, the kernels averaged)."""
    from ...models.inference import guide_map, predict

    if guide is None:
        guide = guide_map(problem.positions, problem.observation.shape[-2:])
    kernel, unc, latent = yield from predict(
        problem.observation, method=network, guide=guide, device=problem.device,
        weights=problem.weights, rotations=rotations, uncertainty=uncertainty)
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
