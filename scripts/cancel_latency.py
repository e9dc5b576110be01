"""How fast Cancel stops an extraction: gaps between progress events, and the widget.

Cancel takes effect at the method's next progress event or at the solver's next cancel
check (``napari_qpi.progress.checkpoint``, once per iteration), so the longest gap
between two of those bounds the wait. Run::

    python scripts/cancel_latency.py                   # gaps of every method
    xvfb-run -a python scripts/cancel_latency.py --widget sbd   # Cancel in a real viewer

Prints, per method, the number of events and the median / longest gap in seconds on a
128-px, 8-energy simulated map; with ``--widget``, the seconds from pressing Cancel
(2 s into the run) to the worker's ``finished`` signal. The aim (issue 12) is < 0.3 s
between events and < 1 s to cancel.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def gaps(method: str, observation: np.ndarray, pixel_size: float) -> np.ndarray:
    """Seconds between successive progress events or cancel checks of ``iter_extract``."""
    from napari_qpi.extraction.extract import iter_extract
    from napari_qpi.progress import cancellable

    stamps = [time.perf_counter()]
    gen = iter_extract(observation, method=method, pixel_size=pixel_size)
    with cancellable(None, on_check=lambda: stamps.append(time.perf_counter())):
        while True:
            try:
                next(gen)
            except StopIteration:
                break
            stamps.append(time.perf_counter())
    stamps.append(time.perf_counter())
    return np.diff(stamps)


def widget_cancel(method: str, after: float = 2.0) -> float:
    """Seconds from Cancel to the worker's end in a real viewer's extraction widget."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_qpi.napari.layers import apply_layers, synthetic_layers
    from napari_qpi.physics import simulate

    viewer = napari.Viewer(show=False)
    apply_layers(viewer, synthetic_layers(simulate(seed=0)))
    _, widget = viewer.window.add_plugin_dock_widget("napari-qpi", "Kernel extraction")
    widget.method.value = method
    worker = widget.run()
    done = []
    worker.finished.connect(lambda: done.append(time.perf_counter()))
    end = time.perf_counter() + after
    while time.perf_counter() < end and not done:
        QApplication.processEvents()
        time.sleep(0.01)
    pressed = time.perf_counter()
    widget.cancel()
    while not done:
        QApplication.processEvents()
        time.sleep(0.005)
    viewer.close()
    return done[0] - pressed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("methods", nargs="*", help="methods (default: every blind one)")
    parser.add_argument("--widget", action="store_true",
                        help="measure Cancel in a real viewer instead")
    args = parser.parse_args()
    from napari_qpi.extraction.registry import METHODS
    from napari_qpi.physics import simulate

    names = args.methods or [m.name for m in METHODS.values() if not m.needs_positions]
    if args.widget:
        for name in names:
            print(f"{name:10s} cancel → finished: {widget_cancel(name):.2f} s")
        return
    sim = simulate(seed=0)
    for name in names:
        g = gaps(name, sim.observation, sim.pixel_size)
        print(f"{name:10s} {len(g) - 1:6d} events and checks, median gap {np.median(g):.3f} s, "
              f"longest {g.max():.3f} s, total {g.sum():.1f} s")


if __name__ == "__main__":
    main()
