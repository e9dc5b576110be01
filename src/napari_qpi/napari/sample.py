"""Sample data: a synthetic QPI stack with its ground truth."""

from __future__ import annotations

from .layers import stack_kwargs


def sample_stack():
    """A seeded Ag(111)-like stack: observation, true kernel and scatterer positions."""
    from ..physics import simulate

    sim = simulate(seed=0)
    kw = stack_kwargs(sim.energies, sim.pixel_size)
    truth = {"kernel": sim.kernel, "positions": sim.positions, "energies": sim.energies,
             "pixel_size": sim.pixel_size}
    obs = (sim.observation, {**kw, "name": "QPI observation", "colormap": "gray",
                             "metadata": {"ground_truth": truth,
                                          "energies": sim.energies.tolist(),
                                          "pixel_size": sim.pixel_size}}, "image")
    half = -(sim.kernel.shape[-1] // 2) * sim.pixel_size
    ker = (sim.kernel, {**kw, "name": "true kernel", "colormap": "RdBu_r",
                        "translate": (kw["translate"][0], half, half),
                        "visible": False}, "image")
    pts = (sim.positions * sim.pixel_size, {"name": "scatterers", "size": 3 * sim.pixel_size,
                                             "face_color": "yellow", "units": kw["units"][1:],
                                             "axis_labels": kw["axis_labels"][1:]}, "points")
    return [obs, ker, pts]
