"""Speed and memory of extraction (a script, not a timed test).

    python benchmarks/bench_extract.py
    python benchmarks/bench_extract.py --network-only
    python benchmarks/bench_extract.py --default-only
    python benchmarks/bench_extract.py --grid [--energies 64] [--one-view]
    python benchmarks/bench_extract.py --decoder

Prints the network time per 128×128 slice (target ≤ 50 ms on 2 CPU cores; with
``--network-only`` for one view and the default four, and nothing else), the whole
extract() time per slice, the time of ``auto`` and ``sbd`` on one map and on an
8-energy stack (``--default-only``: the default method alone, also on a 256×256 map, the
issue-27 targets 3 s / 10 s / 20 s; ``--grid``: a simulated 64×256×256 grid, target
3 min, with the longest waits between progress events and between the solvers' cancel
checks, the most a Cancel waits; ``--decoder``: one step of the latent fit's decoder,
forward and backward, for the 4 kernels of a map's four views and the 32 of an 8-energy
stack's),
and the peak resident memory of a 256×256×128 stack extraction (target < 2 GB)
measured in a fresh process.
"""

from __future__ import annotations

import os
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


def main(argv=None) -> None:
    import argparse

    import torch

    from napari_qpi import extract, simulate
    from napari_qpi.models.inference import predict
    from napari_qpi.progress import drain

    p = argparse.ArgumentParser(description="speed and memory of extraction")
    p.add_argument("--network-only", action="store_true",
                   help="time the network alone, with one view and with the default four")
    p.add_argument("--default-only", action="store_true",
                   help="time the default method alone: one 128² map, an 8×128² stack, "
                        "one 256² map")
    p.add_argument("--grid", action="store_true",
                   help="time the default method on a simulated E×256×256 grid, with the "
                        "longest wait between progress events")
    p.add_argument("--energies", type=int, default=64, help="energies of --grid")
    p.add_argument("--decoder", action="store_true",
                   help="time one latent-fit step of the decoder (forward and backward)")
    p.add_argument("--one-view", action="store_true",
                   help="--grid with config=ONE_VIEW: the latent fit from one view of "
                        "the stack instead of four")
    a = p.parse_args(argv)
    if a.decoder:
        decoder_step()
        return
    if a.grid:
        grid(a.energies, a.one_view)
        return
    sim = simulate(seed=0, energies=np.linspace(-20, 60, 16))
    obs = sim.observation
    if a.default_only:
        big = simulate(seed=0, energies=np.array([10.0]), shape=(256, 256),
                       n_scatterers=80).observation
        # warm up on another slice: imports, FFT plans and the networks' weights (a
        # process's first auto call loads them: about 1.8 s more); printed, since a
        # script or the CLI run on one map pays it
        t = time.perf_counter()
        extract(obs[1:2], method="auto")
        print(f"extract(auto) 1×128×128, the process's first call: "
              f"{time.perf_counter() - t:.1f} s")
        for label, data in (("1×128×128", obs[:1]), ("8×128×128", obs[:8]),
                            ("1×256×256", big)):
            t = time.perf_counter()
            extract(data, method="auto")
            print(f"extract(auto) {label}: {time.perf_counter() - t:.1f} s")
        return
    for threads in (1, 2):
        torch.set_num_threads(threads)
        drain(predict(obs[:2]))  # warm up, load weights
        for views in (1, None) if a.network_only else (None,):
            t = time.perf_counter()
            for _ in range(3):
                drain(predict(obs, rotations=views))
            net = (time.perf_counter() - t) / 3 / len(obs)
            print(f"network, two-stage, 128×128, {views or 'default'} view(s), "
                  f"{threads} thread(s): {1000 * net:.1f} ms/slice")
    if a.network_only:
        return
    os.environ["NAPARI_QPI_THREADS"] = "2"  # extract sets torch's count from it
    for method in ("two-stage", "one-step"):
        t = time.perf_counter()
        extract(obs, method=method)
        print(f"extract({method}) 16×128×128: "
              f"{1000 * (time.perf_counter() - t) / len(obs):.1f} ms/slice")
    # the default method and the classical anchor, on one map and on an 8-energy stack
    for method in ("auto", "sbd"):
        for n in (1, 8):
            t = time.perf_counter()
            extract(obs[:n], method=method)
            print(f"extract({method}) {n}×128×128: {time.perf_counter() - t:.1f} s")
    out = subprocess.run([sys.executable, "-c", BIG], capture_output=True, text=True,
                         check=True).stdout.split()
    print(f"extract(two-stage) 128×256×256: {float(out[0]):.1f} s, "
          f"peak RSS {float(out[1]):.0f} MB")


def decoder_step(repeats: int = 30) -> None:
    """Milliseconds of one latent-fit step through the shipped decoder: the kernels
    decoded from their latents on fixed anchors, and the gradient back to the latents."""
    import torch

    from napari_qpi.models.weights import cached_set

    torch.set_num_threads(2)
    vae = cached_set("default", "cpu")[1]["vae"]
    maps = torch.from_numpy(np.random.default_rng(0).standard_normal((32, 128, 128))).float()
    for n, what in ((4, "a map's four views"), (32, "an 8-energy stack's four views")):
        z = torch.zeros(n, vae.cfg.latent_dim, requires_grad=True)
        decode = vae.decoder_on(vae.anchor_of(maps[:n]))
        for _ in range(5):
            decode(z).sum().backward()
        t = time.perf_counter()
        for _ in range(repeats):
            decode(z).sum().backward()
        print(f"decoder step, {n} kernels ({what}), 2 threads: "
              f"{1000 * (time.perf_counter() - t) / repeats:.1f} ms")


def grid(energies: int, one_view: bool = False) -> None:
    """``auto`` on a simulated (energies, 256, 256) grid: total time, the longest stretch
    without a progress event or a cancel check (the most a Cancel waits), and the longest
    waits between progress events (the progress bar's)."""
    from napari_qpi import simulate
    from napari_qpi.extraction.config import ONE_VIEW
    from napari_qpi.extraction.extract import iter_extract
    from napari_qpi.progress import cancellable

    t = time.perf_counter()
    obs = simulate(seed=0, energies=np.linspace(-20, 60, energies), shape=(256, 256),
                   n_scatterers=80).observation
    print(f"simulate {energies}×256×256: {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    stamps: list[tuple[float, str]] = [(t, "start")]  # progress events and cancel checks
    step = ["start"]  # the step running (the last event's message)

    def tick() -> None:  # every solver iteration's cancel check (progress.checkpoint)
        stamps.append((time.perf_counter(), step[0]))

    events = [(t, "start")]
    gen = iter_extract(obs, method="auto", config=ONE_VIEW if one_view else None)
    with cancellable(None, on_check=tick):
        while True:
            try:
                event = next(gen)
            except StopIteration:
                break
            step[0] = getattr(event, "message", "")
            now = time.perf_counter()
            stamps.append((now, step[0]))
            events.append((now, step[0]))
    stamps.append((time.perf_counter(), "end"))
    # the most a Cancel waits: the longest stretch without an event or a check
    wait, where = max((b[0] - a[0], a[1]) for a, b in zip(stamps, stamps[1:]))
    print(f"extract(auto) {energies}×256×256: {time.perf_counter() - t:.1f} s; longest "
          f"stretch without a progress event or cancel check {wait:.2f} s (in '{where}')")
    gaps = sorted(((b[0] - a[0], a[1], b[1]) for a, b in zip(events, events[1:])),
                  reverse=True)
    for gap, after, before in gaps[:5]:
        print(f"  {gap:.2f} s without a progress event, after '{after}', before '{before}'")


if __name__ == "__main__":
    main()
