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


#: With an automatic window SBD runs in this multiple of the estimate (at most the
#: largest window): the estimate reads where the pattern falls to 5 % of its peak, and
#: the tail beyond it still carries signal SBD can use. Chosen on own draws (48
#: instrument and class maps, 24 white-noise maps; never a validation set): median tail
#: similarity ×1 0.709 / 0.851, ×1.25 0.742 / 0.871, **×1.5 0.758 / 0.879**, ×2 0.727 /
#: 0.889, the largest window 0.673 on the instrument draws
#: (docs/notes/2026-12-07-window-highpass.md).
SBD_WIDEN = 1.5


def sbd(problem: Problem):
    """Multi-slice sparse blind deconvolution (Cheung et al. 2020), blind.

    SBD sees the stack on the problem's one global scale: its least-squares fit then
    weighs every energy by its real signal. Its own activation is returned with the
    kernel (the final fit keeps it when it explains the map better). With an automatic
    window it runs in :data:`SBD_WIDEN` × the estimate; a window the user gives is kept.
    Its sparsity follows the noise level read from held-out pixels (:func:`sbd_sparsity`).
    """
    from ..sbd import iter_sbd
    from ..window import odd

    k = problem.kernel_size
    if problem.max_window is not None:  # the window is automatic (extract's estimate)
        k = min(int(problem.max_window), odd(SBD_WIDEN * k))
    result = yield from iter_sbd(problem.observation, k, rng=problem.rng,
                                 device=problem.device, sparsity=sbd_sparsity(problem))
    return MethodResult(result.kernel, result.activation,
                        info={"sbd_objective": result.objective})


def sbd_sparsity(problem: Problem) -> float | None:
    """SBD's λ (units of the stack's RMS, :func:`~..noise.default_sparsity`) from the
    noise level the problem carries, which ``extract`` reads from held-out pixels
    (:mod:`..sparsity`); None (SBD's own estimate) where the problem has none.

    SBD's own noise estimate is the white-noise one, from the power near the Nyquist
    frequency: an oversampled or lock-in-filtered map has almost none there, σ̂ → 0 and
    λ falls to its floor, so SBD fits a dense activation and puts the noise in the
    kernel. On white-noise maps the held-out level is the spectral one where the two
    agree, and λ does not change. Own draws (never a validation set), median tail
    similarity: `sbd` on 48 instrument maps 0.822 → 0.839 (25 up, 7 down), 24 class
    maps 0.732 → 0.717 (6 up, 6 down), 24 white-noise maps 0.845 → 0.845
    (docs/notes/2026-12-08-lattice-waves.md §2). ``auto``'s SBD refinements of the
    network's and the power kernels keep SBD's own λ (:func:`~.refine.polish`); its
    refinement of the latent fit takes this one (:func:`~.refine.compete`).
    """
    import numpy as np

    from ..noise import default_sparsity

    noise = np.asarray(problem.noise, float)
    if not np.any(noise > 0):
        return None
    y = np.asarray(problem.observation, float)
    y = y - y.mean(axis=(-2, -1), keepdims=True)  # as SBD sees it: mean-free, unit RMS
    rms = float(np.sqrt((y**2).mean())) or 1.0
    level = float(np.sqrt(np.mean(np.broadcast_to(noise, (len(y),)) ** 2)))
    return default_sparsity(level / rms)
