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


@register("power")
def power_method(problem: Problem):
    """Zero-phase kernel from the power spectrum (blind; a floor for the benchmark)."""
    from .power import power_kernel

    yield Progress("power spectrum", 0, 1)
    kernel = power_kernel(problem.observation, problem.kernel_size)
    yield Progress("power spectrum", 1, 1)
    return kernel, None, None


@register("sbd")
def sbd_method(problem: Problem):
    """Multi-slice sparse blind deconvolution (Cheung et al. 2020), blind.

    SBD sees the stack with one global scale (the per-slice means removed, each slice's
    own z-score undone): its least-squares fit then weighs every energy by its real
    signal, and the noise level behind the default λ is the same in every slice.
    """
    from .sbd import iter_sbd

    stack = problem.observation * problem.scales[:, None, None]
    gen = iter_sbd(stack, problem.kernel_size, rng=0, device=problem.device)
    while True:
        try:
            message, step, total = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        yield Progress(message, step, total)
    return result.kernel, None, None
