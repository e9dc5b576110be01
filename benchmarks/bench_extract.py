"""Speed and memory of extraction (a script, not a timed test).

    python benchmarks/bench_extract.py

Prints the network time per 128×128 slice (target ≤ 50 ms on 2 CPU cores), the whole
extract() time per slice, and the peak resident memory of a 256×256×128 stack
extraction (target < 2 GB) measured in a fresh process.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

BIG = """
import resource, time, numpy as np
from napari_qpi import extract
rng = np.random.default_rng(0)
obs = rng.standard_normal((128, 256, 256)).astype(np.float32)
t = time.perf_counter()
res = extract(obs, method="two-stage")
dt = time.perf_counter() - t
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    import torch

    from napari_qpi import extract, simulate
    from napari_qpi.models.inference import predict
    from napari_qpi.progress import drain

    sim = simulate(seed=0, energies=np.linspace(-20, 60, 16))
    obs = sim.observation
    for threads in (1, 2):
        torch.set_num_threads(threads)
        drain(predict(obs[:2]))  # warm up, load weights
        t = time.perf_counter()
        for _ in range(3):
            drain(predict(obs))
        net = (time.perf_counter() - t) / 3 / len(obs)
        print(f"network, two-stage, 128×128, {threads} thread(s): {1000 * net:.1f} ms/slice")
    torch.set_num_threads(2)
    for method in ("two-stage", "one-step"):
        t = time.perf_counter()
        extract(obs, method=method)
        print(f"extract({method}) 16×128×128: "
              f"{1000 * (time.perf_counter() - t) / len(obs):.1f} ms/slice")
    out = subprocess.run([sys.executable, "-c", BIG], capture_output=True, text=True,
                         check=True).stdout.split()
    print(f"extract(two-stage) 128×256×256: {float(out[0]):.1f} s, "
          f"peak RSS {float(out[1]):.0f} MB")


if __name__ == "__main__":
    main()
