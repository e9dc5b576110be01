"""Classical methods: Wiener (guided), power spectrum (blind), SBD (blind)."""

from __future__ import annotations

from ...progress import Progress
from ..registry import MethodResult, Problem


def wiener(problem: Problem):
    """Wiener deconvolution with the given scatterer positions (equal strengths)."""
    from .wiener import wiener_kernel

    yield Progress("Wiener deconvolution", 0, 1)
    kernel = wiener_kernel(problem.observation, problem.positions, problem.kernel_size)
    yield Progress("Wiener deconvolution", 1, 1)
    return MethodResult(kernel)


def power(problem: Problem):
    """Zero-phase kernel from the power spectrum (blind; a floor for the benchmark)."""
    from .power import power_kernel

    yield Progress("power spectrum", 0, 1)
    kernel = power_kernel(problem.observation, problem.kernel_size)
    yield Progress("power spectrum", 1, 1)
    return MethodResult(kernel)


def sbd(problem: Problem):
    """Multi-slice sparse blind deconvolution (Cheung et al. 2020), blind.

    SBD sees the stack on the problem's one global scale: its least-squares fit then
    weighs every energy by its real signal. Its own activation is returned with the
    kernel (the final fit keeps it when it explains the map better).
    """
    from ..sbd import iter_sbd

    result = yield from iter_sbd(problem.observation, problem.kernel_size, rng=problem.rng,
                                 device=problem.device)
    return MethodResult(result.kernel, result.activation,
                        info={"sbd_objective": result.objective})
