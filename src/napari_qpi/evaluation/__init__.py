"""Evaluation: how good is an extracted kernel?

- :mod:`.metrics` — kernel similarity, tail similarity, paper RMSE/MAE, q-space
  correlation, relative residual (QPI primer §5), numpy only.
- :func:`score` — every metric of an estimate against a true kernel, after cropping both
  to a common centred window; the one scoring function of the CLI, napari and benchmarks.
- :mod:`.benchmark` — every method on the same seeded simulated cases.
- :mod:`.foreign` — every method on the foreign validation set (another simulator).
- :mod:`.paper_protocol` — the seed paper's train/test protocol (loads torch).
- :mod:`.figures` — the overview figure of ``napari-qpi demo``.

Importing this package loads numpy only.
"""

from __future__ import annotations

from .metrics import (
    kernel_similarity,
    paper_mae,
    paper_rmse,
    qspace_correlation,
    relative_residual,
    tail_similarity,
)
from .score import SCORES, score

__all__ = [
    "SCORES",
    "kernel_similarity",
    "paper_mae",
    "paper_rmse",
    "qspace_correlation",
    "relative_residual",
    "score",
    "tail_similarity",
]
