"""Other views of a problem: the map turned by quarter turns, or a few of its energies.

The latent fit (:mod:`.latent`) starts from each quarter-turn view of the network and, on
a long stack, chooses its view on a few evenly spaced energies; ``auto`` judges its
candidates on the same energies (:func:`~.refine.judging`).
"""

from __future__ import annotations

import numpy as np

from ..registry import Problem

__all__ = ["energy_subset", "subset_energies", "turn"]


def turn(problem: Problem, r: int) -> Problem:
    """The problem turned by ``r`` quarter turns (``np.rot90`` of the map, its positions
    turned with it); its other fields are shared."""
    from dataclasses import replace

    y, pos = problem.observation, problem.positions
    if pos is not None:
        pos = np.asarray(pos, float)
        h, w = y.shape[-2:]
        for _ in range(r % 4):  # np.rot90: (i, j) → (W − 1 − j, i); H and W swap
            pos, h, w = np.stack([w - 1 - pos[:, 1], pos[:, 0]], 1), w, h
    return replace(problem, observation=np.ascontiguousarray(np.rot90(y, r, (-2, -1))),
                   positions=pos)


def subset_energies(e: int, n: int) -> np.ndarray:
    """Indices of ``n`` of ``e`` energies, evenly spaced from the first to the last."""
    return np.unique(np.round(np.linspace(0, e - 1, n)).astype(int))


def energy_subset(problem: Problem, n: int) -> Problem:
    """The problem on ``n`` of its energies (:func:`subset_energies`)."""
    from dataclasses import replace

    e = len(problem.observation)
    idx = subset_energies(e, n)
    noise = problem.noise  # a level per energy, or one for all
    if np.ndim(noise) and np.size(noise) == e:
        noise = np.asarray(noise)[idx]
    return replace(problem, observation=np.ascontiguousarray(problem.observation[idx]),
                   noise=noise)
