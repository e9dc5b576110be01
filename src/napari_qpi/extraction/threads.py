"""How many CPU threads torch may use for one extraction.

Torch starts one thread per core. That is right on a quiet machine and wrong on a busy
one: measured on 2 cores (docs/notes/2026-12-05-threads.md), ``auto`` on an 8×128² stack
took 57 s with one thread and 37 s with two when the machine was quiet, but 104 s with one
and 184 s with two when another process kept the cores busy; the answer was the same.
So each extraction looks at how busy the cores are just before it starts and gives torch
the idle ones, at least one. ``NAPARI_QPI_THREADS`` fixes the count instead.
"""

from __future__ import annotations

import os
import time

ENV = "NAPARI_QPI_THREADS"
SAMPLE_SECONDS = 0.05  # long enough for /proc/stat's 10 ms ticks, short next to any method


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _busy_ticks() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None  # not Linux: no cheap, portable load sample
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores() -> float:
    """Cores other processes keep busy now (sampled over 50 ms; 0 where unknown).

    Our own threads are subtracted: numpy's and torch's pools spin for a while after the
    preprocessing that just ran, which would otherwise read as a busy machine.
    """
    first = _busy_ticks()
    if first is None:
        return 0.0
    wall0, own0 = time.perf_counter(), time.process_time()
    time.sleep(SAMPLE_SECONDS)
    second = _busy_ticks()
    wall, own = time.perf_counter() - wall0, time.process_time() - own0
    total = second[1] - first[1]
    if total <= 0 or wall <= 0:
        return 0.0
    everyone = (second[0] - first[0]) / total * (os.cpu_count() or 1)
    return max(0.0, everyone - own / wall)


def choose_threads() -> int:
    """The thread count for the next extraction: ``NAPARI_QPI_THREADS`` if set, else the
    idle cores (at least one).

    Raises
    ------
    ValueError
        If ``NAPARI_QPI_THREADS`` is not a whole number ≥ 1.
    """
    value = os.environ.get(ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{ENV}={value!r} is not a thread count; set it to a whole "
                             f"number ≥ 1 (or unset it to use the idle cores)")
        return n
    cores = _cores()
    return max(1, min(cores, int(cores - busy_cores() + 0.5)))


def use_threads(needs_torch: bool) -> int | None:
    """Give torch and the operator's large FFTs the chosen thread count; ``None`` (and no
    sampling) for a method that runs without torch."""
    if not needs_torch:
        return None
    import torch

    from . import operator

    n = choose_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    operator.FFT_WORKERS = n
    return n
