"""Peak memory of the default extraction against the map's size (a script, not a test).

    python benchmarks/bench_memory.py                       # 256², 512², 1024², 2048² maps
    python benchmarks/bench_memory.py --sizes 256 512 --energies 1 16
    python benchmarks/bench_memory.py --method sbd

Each case runs ``extract`` in a fresh process (peak resident memory is per process) on a
map of smoothed noise with sparse bright scatterers, and prints the peak RSS, the
seconds, the memory per pixel above the first case, and the estimate that
:func:`napari_qpi.extraction.validate.estimate_memory` refuses work by. Memory must grow
no faster than linearly with the number of voxels.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from napari_qpi.extraction.registry import get_method
from napari_qpi.extraction.validate import estimate_memory

CASE = """
import resource, sys, time
import numpy as np
from scipy import ndimage
from napari_qpi import extract
e, n, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
x = (rng.random((n, n)) < 0.002).astype(float)
obs = np.stack([ndimage.gaussian_filter(x, 2 + i % 3) for i in range(e)])
obs += 0.05 * obs.std() * rng.standard_normal(obs.shape)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
extract(obs if e > 1 else obs[0], method=method)
dt = time.perf_counter() - t
try:  # VmHWM is this program's own peak; ru_maxrss can carry the parent's across exec
    peak = float(next(ln for ln in open("/proc/self/status")
                      if ln.startswith("VmHWM")).split()[1]) / 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(dt, peak, base / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--energies", type=int, nargs="+", default=[1])
    parser.add_argument("--method", default="auto")
    args = parser.parse_args()
    spec = get_method(args.method)
    print(f"method={args.method}: peak RSS of extract() in a fresh process")
    print("| energies × map | seconds | peak RSS (MB) | input (MB) | estimate (MB) |")
    print("|---|---|---|---|---|")
    for e in args.energies:
        for n in args.sizes:
            out = subprocess.run([sys.executable, "-c", CASE, str(e), str(n), args.method],
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                print(f"| {e} × {n}² | failed: {out.stderr.strip().splitlines()[-1]} |")
                continue
            dt, peak, _ = (float(v) for v in out.stdout.split())
            est = estimate_memory((e, n, n), spec.learned) / 1e6
            print(f"| {e} × {n}² | {dt:.1f} | {peak:.0f} | {8 * e * n * n / 1e6:.0f} | "
                  f"{est:.0f} |", flush=True)


if __name__ == "__main__":
    main()
