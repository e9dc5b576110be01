"""Time the physics simulator (a script, not a test).

    python benchmarks/bench_simulate.py [--repeats 5] [--family free_electron]

Cases: (a) a 32-energy stack of 65×65 T-matrix kernels; (b) a 128×128×32 observation
with 30 scatterers, linear model; (c) the same with the multi-impurity T-matrix.
Prints the median wall time of ``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from napari_qpi.physics import GreensFunction, crop_centered, default_band, default_defect
from napari_qpi.physics.kernels import kernel_grid
from napari_qpi.physics.simulation import (
    _grid_for,
    decay_length,
    default_broadening,
    default_energies,
    default_pixel_size,
    simulate,
)


def kernel_stack(family: str, n_energies: int = 32, size: int = 65) -> np.ndarray:
    """(E, size, size) T-matrix kernels of a family's default band and defect."""
    band = default_band(family)
    energies = default_energies(band, n_energies)
    ps = default_pixel_size(band)
    eta = default_broadening(band, energies, ps)
    m = _grid_for((size, size), size, decay_length(band, energies, ps, eta))
    gf = GreensFunction(band, energies, m, ps, eta)
    defect = default_defect(band, 3.0 * band.energy_scale())
    return crop_centered(kernel_grid(gf, defect, band), size)


def observation(family: str, model: str) -> np.ndarray:
    """A 128×128×32 observation with 30 scatterers."""
    band = default_band(family)
    return simulate(family=family, shape=(128, 128), energies=default_energies(band, 32),
                    n_scatterers=30, model=model, seed=0).observation


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--family", default=None,
                        help="one family; default: free_electron and triangular_c3")
    args = parser.parse_args()
    families = [args.family] if args.family else ["free_electron", "triangular_c3"]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"numpy {np.__version__}, median of {args.repeats}")
    print("| case | family | median time (s) |")
    print("|---|---|---|")
    for fam in families:
        cases = {
            "(a) 32 × 65×65 T-matrix kernels": lambda f=fam: kernel_stack(f),
            "(b) 128×128×32, 30 scatterers, linear": lambda f=fam: observation(f, "linear"),
            "(c) 128×128×32, 30 scatterers, tmatrix": lambda f=fam: observation(f, "tmatrix"),
        }
        for name, fn in cases.items():
            print(f"| {name} | {fam} | {median_time(fn, args.repeats):.2f} |", flush=True)


if __name__ == "__main__":
    main()
