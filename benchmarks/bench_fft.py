"""The operator's FFTs and one FISTA iteration (a script, not a timed test).

    python benchmarks/bench_fft.py

Prints an rfft2 + irfft2 pair on one and on two threads for the transform sizes the
solvers use (a 128² map's 160² and 192² grids, stacks of them, a 64-energy 256² grid),
which sets ``operator.PARALLEL_FFT_POINTS``; and the time of one masked FISTA iteration
on 64 energies of 256² with a 65-px float32 kernel and float64 data (the case the
solver's own precision was chosen on). Run it on a quiet machine.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.fft as sfft


def _pair(a: np.ndarray, workers: int) -> float:
    sfft.irfft2(sfft.rfft2(a, workers=workers), s=a.shape[-2:], workers=workers)
    n = max(3, int(2e6 / a.size))
    t = time.perf_counter()
    for _ in range(n):
        sfft.irfft2(sfft.rfft2(a, workers=workers), s=a.shape[-2:], workers=workers)
    return (time.perf_counter() - t) / n


def main() -> None:
    from napari_qpi.extraction.fista import fista
    from napari_qpi.extraction.operator import ConvOperator

    rng = np.random.default_rng(0)
    print("| transform | points | 1 thread | 2 threads |\n|---|---|---|---|")
    for shape in [(160, 160), (192, 192), (4, 192, 192), (8, 160, 160), (32, 192, 192),
                  (64, 288, 288)]:
        a = rng.random(shape).astype(np.float32)
        one, two = _pair(a, 1), _pair(a, 2)
        print(f"| {'×'.join(map(str, shape))} | {a.size} | {one * 1e6:.0f} µs | "
              f"{two * 1e6:.0f} µs |")
    e, s, k = 64, 256, 65
    op = ConvOperator(rng.standard_normal((e, k, k)).astype(np.float32), (s, s))
    y = rng.standard_normal((e, s, s))
    mask = (rng.random((s, s)) > 0.1).astype(float)
    fista(op, y, sparsity=1.0, num_iter=2, mask=mask)
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        fista(op, y, sparsity=1.0, num_iter=10, mask=mask)
        best = min(best, (time.perf_counter() - t) / 10)
    print(f"FISTA, {e}×{s}² float64 data, float32 {k}-px kernels, masked: "
          f"{best * 1e3:.1f} ms per iteration (best of 3 × 10)")


if __name__ == "__main__":
    main()
