"""Sample data: a synthetic QPI stack with its ground truth."""

from __future__ import annotations

from .layers import LayerDataTuple, synthetic_layers


def sample_stack() -> list[LayerDataTuple]:
    """A seeded Ag(111)-like stack: observation, true kernel and scatterer positions.

    Returns
    -------
    list of (data, kwargs, layer_type)
        The observation (ground truth in ``metadata["ground_truth"]``), the true kernel
        (hidden) and the scatterers as a Points layer in pixel coordinates scaled to Å.
    """
    from ..physics import simulate

    return synthetic_layers(simulate(seed=0))
