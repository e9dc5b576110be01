"""Classical extraction methods registered with :func:`extract`."""

from __future__ import annotations

from .extract import Problem, Progress, register


@register("wiener")
def wiener_method(problem: Problem):
    from .wiener import wiener_kernel

    if problem.positions is None:
        raise ValueError("method='wiener' needs positions: the (N, 2) scatterer pixels")
    yield Progress("Wiener deconvolution", 0, 1)
    kernel = wiener_kernel(problem.observation, problem.positions, problem.kernel_size)
    yield Progress("Wiener deconvolution", 1, 1)
    return kernel, None, None
