"""Training data on the fly: a bank of simulated kernels and observations made from it.

The bank holds each kernel on a full 256×256 periodic grid (its tails reach far beyond
the 65-px window, as real tails do), stored as an rFFT so that an observation is one
product and one inverse FFT: Y = K ⊛ X for a batch of maps in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..physics.classes import ClassSpec, sample_classes
from ..physics.kernels import GreensFunction, crop_centered, kernel_grid
from ..physics.sampling import SPLITS, sample_spec

BANK_GRID = 256
#: Kernel samplers: the six legacy families, or the broad physics classes mixed with them.
SAMPLERS = ("families", "broad")


@dataclass
class KernelBank:
    """Simulated kernels: rFFTs on the bank grid, 65-px windows, families."""

    spectra: torch.Tensor  # (N, M, M//2+1) complex64, unit-norm window
    windows: torch.Tensor  # (N, k, k) float32, unit L2 norm
    orders: torch.Tensor  # (N,) int64 symmetry order
    families: list[str]

    def __len__(self) -> int:
        return len(self.families)


def canonical_sign(kernel: np.ndarray) -> float:
    """+1 or −1 so that the kernel's core (r ≤ 3 px) sums positive."""
    h = kernel.shape[-1] // 2
    yy, xx = np.mgrid[-h : h + 1, -h : h + 1]
    return 1.0 if kernel[..., yy**2 + xx**2 <= 9].sum() >= 0 else -1.0


def bank_specs(split: str, n: int, *, seed: int = 0, sampler: str = "broad",
               family_fraction: float = 0.25) -> list:
    """The seeded kernel specs of a bank.

    ``sampler="families"`` cycles through the six legacy families of ``split``;
    ``"broad"`` draws ``family_fraction`` of them so and the rest from the physics
    classes of ``split`` (:mod:`napari_qpi.physics.classes`; ``"seen"`` leaves the
    held-out classes out), in a seeded shuffled order.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is unknown; choose one of {SAMPLERS}")
    rng = np.random.default_rng(seed)
    fams = SPLITS[split]
    n_fam = n if sampler == "families" else int(round(family_fraction * n))
    specs = [sample_spec(fams[i % len(fams)], rng) for i in range(n_fam)]
    specs += sample_classes(split, n - n_fam, rng)
    if sampler == "broad":
        specs = [specs[i] for i in rng.permutation(len(specs))]
    return specs


def build_bank(split: str, n: int, *, kernel_size: int = 65, seed: int = 0,
               sampler: str = "families", family_fraction: float = 0.25,
               progress=None) -> KernelBank:
    """Draw ``n`` kernels of ``split`` (seeded; see :func:`bank_specs`)."""
    specs = bank_specs(split, n, seed=seed, sampler=sampler, family_fraction=family_fraction)
    return bank_from_specs(specs, kernel_size=kernel_size, progress=progress)


def bank_from_specs(specs, *, kernel_size: int = 65, progress=None,
                    workers: int = 1) -> KernelBank:
    """A bank holding the kernels of the given :class:`KernelSpec` / :class:`ClassSpec`
    list; ``progress(done, total)`` is called every 100 kernels; ``workers`` processes
    share the simulation (:func:`iter_bank`)."""
    from ..progress import drain

    gen = iter_bank(specs, kernel_size=kernel_size, workers=workers)
    return drain(gen, None if progress is None else lambda ev: progress(ev.step, ev.total))


def _bank_entry(spec, kernel_size: int):
    """One bank kernel: (rFFT on the bank grid, window, symmetry order, name)."""
    from ..physics.bands import SYMMETRY_ORDER

    if isinstance(spec, ClassSpec):
        grid, order, name = spec.grid(BANK_GRID), spec.order, spec.name
    else:
        gf = GreensFunction(spec.band, np.array([spec.energy]), BANK_GRID,
                            spec.pixel_size, spec.broadening)
        grid = kernel_grid(gf, spec.defect, spec.band, blur=spec.blur)[0]
        order, name = SYMMETRY_ORDER[spec.band.family], spec.band.family
    win = crop_centered(grid, kernel_size)
    # canonical sign (positive core); extract() restores the data's sign later
    norm = (np.linalg.norm(win) + 1e-30) * canonical_sign(win)
    return (np.fft.rfft2(grid / norm).astype(np.complex64), (win / norm).astype(np.float32),
            order, name)


def _bank_chunk(specs, kernel_size: int) -> list:
    return [_bank_entry(spec, kernel_size) for spec in specs]


def iter_bank(specs, *, kernel_size: int = 65, workers: int = 1):
    """Generator form of :func:`bank_from_specs`: yields a Progress every 100 kernels,
    returns the bank.

    ``workers`` > 1 simulates chunks of 100 kernels in that many processes (the
    simulator is numpy, one core per kernel); the bank is the same for any count, since
    every spec is drawn before the work is shared out.
    """
    from ..progress import Progress

    chunks = [specs[i:i + 100] for i in range(0, len(specs), 100)]
    entries: list = []
    if workers <= 1:
        results = (_bank_chunk(c, kernel_size) for c in chunks)
        pool = None
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a forked torch process can deadlock in its thread pools
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(_bank_chunk, chunks, [kernel_size] * len(chunks))
    try:
        for chunk in results:
            entries += chunk
            if len(chunk) == 100:
                yield Progress("bank", len(entries), len(specs))
    finally:
        if pool is not None:  # a cancelled run returns now; busy workers end their chunk
            pool.shutdown(wait=False, cancel_futures=True)
    spectra, windows, orders, names = zip(*entries) if entries else ((), (), (), ())
    return KernelBank(torch.from_numpy(np.stack(spectra)), torch.from_numpy(np.stack(windows)),
                      torch.tensor(orders), list(names))


#: A kernel's centre under ``centre="bright"``: the maximum of the window smoothed with
#: a Gaussian of this σ (px), within this radius (px) of the defect's first site.
BRIGHT_SIGMA, BRIGHT_RADIUS = 2.0, 8
CENTRES = ("site", "bright")


def bright_offsets(windows: np.ndarray) -> np.ndarray:
    """(N, 2) offsets (row, col) from each window's centre to its brightest point: the
    maximum of the window smoothed by :data:`BRIGHT_SIGMA`, within :data:`BRIGHT_RADIUS`.

    Where a blind fit puts a scatterer: its kernel, matched to the map, peaks on a
    defect's brightest lobe, not on the site a simulator starts from (a dimer's or a
    trimer's sites are interchangeable to the data).
    """
    from scipy.ndimage import gaussian_filter

    w = np.asarray(windows, float)
    h = w.shape[-1] // 2
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    near = yy**2 + xx**2 <= BRIGHT_RADIUS**2
    smooth = gaussian_filter(w, (0, BRIGHT_SIGMA, BRIGHT_SIGMA))
    flat = np.where(near, smooth, -np.inf).reshape(len(w), -1).argmax(1)
    return np.stack(np.unravel_index(flat, w.shape[-2:]), 1) - h


def shifted_spectra(spectra: torch.Tensor, offsets) -> torch.Tensor:
    """The (N, M, M//2 + 1) bank spectra of K(r + d): each kernel moved so that its
    point ``d`` (``offsets``, (N, 2) row/col px, sub-pixel allowed) is the centre."""
    m = spectra.shape[-2]
    d = torch.as_tensor(np.asarray(offsets, float), dtype=torch.float64)
    q0 = torch.fft.fftfreq(m, dtype=torch.float64)[None, :, None]
    q1 = torch.fft.rfftfreq(m, dtype=torch.float64)[None, None, :]
    ramp = torch.exp(2j * np.pi * (q0 * d[:, :1, None] + q1 * d[:, 1:, None]))
    return spectra * ramp.to(spectra.dtype)


def recentre_bank(bank: KernelBank) -> KernelBank:
    """The bank with every kernel moved so that its brightest point
    (:func:`bright_offsets`) is the centre pixel; windows cut again from the full grid,
    unit norm and canonical sign as before. Maps made from it mark their scatterers where
    a blind fit finds them."""
    m, k = BANK_GRID, bank.windows.shape[-1]
    spectra, windows = [], []
    for at in range(0, len(bank), 500):  # in chunks: a bank holds GBs of spectra
        d = bright_offsets(bank.windows[at:at + 500].numpy())
        spec = shifted_spectra(bank.spectra[at:at + 500].cpu(), d)  # K(r + d)
        win = crop_centered(torch.fft.irfft2(spec, s=(m, m)).numpy(), k)
        norm = np.stack([(np.linalg.norm(w) + 1e-30) * canonical_sign(w) for w in win])
        spectra.append(spec / torch.from_numpy(norm).to(torch.complex64)[:, None, None])
        windows.append(torch.from_numpy((win / norm[:, None, None]).astype(np.float32)))
    if not spectra:
        return bank
    return KernelBank(torch.cat(spectra), torch.cat(windows), bank.orders, list(bank.families))


def make_observations(bank: KernelBank, idx: torch.Tensor, size: int, gen: torch.Generator,
                      *, snr_range=(0.7, 40.0), scatterers=(5, 100)) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
    """Noisy maps (B, size, size) of the bank kernels ``idx`` and their activations.

    Scatterer counts are log-uniform in ``scatterers`` (scaled by the map area relative
    to 128²), strengths uniform 0.6–1.4, SNR log-uniform in ``snr_range``; a quarter of
    the maps get 1/f noise instead of white, a fifth scan-line streaks.
    """
    b = len(idx)
    m = BANK_GRID
    dev = bank.spectra.device  # the FFTs run where the bank lives; draws stay on the CPU
    area = (size / 128) ** 2
    lo, hi = np.log(scatterers[0]), np.log(scatterers[1])
    counts = torch.exp(lo + (hi - lo) * torch.rand(b, generator=gen)) * area
    counts = counts.clamp(min=2).long()
    pos, val = [], []
    for i in range(b):
        flat = torch.randperm(size * size, generator=gen)[: int(counts[i])]
        pos.append(i * m * m + (flat // size) * m + flat % size)
        val.append(0.6 + 0.8 * torch.rand(len(flat), generator=gen))
    x = torch.zeros(b * m * m, device=dev)
    x[torch.cat(pos).to(dev)] = torch.cat(val).to(dev)
    x = x.view(b, m, m)
    y = torch.fft.irfft2(torch.fft.rfft2(x) * bank.spectra[idx.to(dev)],
                         s=(m, m))[:, :size, :size]
    act = x[:, :size, :size]
    # noise: var(signal)/var(noise) = snr
    snr = torch.exp(np.log(snr_range[0]) + (np.log(snr_range[1]) - np.log(snr_range[0]))
                    * torch.rand(b, generator=gen)).to(dev)
    noise = torch.randn(b, size, size, generator=gen).to(dev)
    pink = (torch.rand(b, generator=gen) < 0.25).to(dev)
    if pink.any():
        f = torch.sqrt(torch.fft.fftfreq(size, device=dev)[:, None] ** 2
                       + torch.fft.rfftfreq(size, device=dev)[None, :] ** 2)
        f[0, 0] = float("inf")
        noise[pink] = torch.fft.irfft2(torch.fft.rfft2(noise[pink]) / f.sqrt(), s=(size, size))
    noise = noise - noise.mean((-2, -1), keepdim=True)
    sig_var = y.var((-2, -1))
    noise = noise * torch.sqrt(sig_var / snr / noise.var((-2, -1)))[:, None, None]
    y = y + noise
    streak = torch.rand(b, generator=gen) < 0.2
    if streak.any():
        rows = torch.randn(int(streak.sum()), size, 1, generator=gen)
        rows = rows * (torch.rand(int(streak.sum()), size, 1, generator=gen) < 0.15)
        streak = streak.to(dev)
        y[streak] = y[streak] + 0.5 * sig_var[streak].sqrt()[:, None, None] * rows.to(dev)
    return y, act
