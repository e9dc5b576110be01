"""Long work in napari-qpi is a generator of :class:`Progress` events that returns its result.

One event type and one :func:`drain` serve every generator (extraction, SBD, network
inference, training, simulation): the CLI shows the events as a progress bar, the napari
widget as a napari progress, and a script simply drains them. Closing a generator between
two events cancels the work.

Between two events a step may run for many seconds on a large grid (one FISTA on 64
energies of 256²). So that a Cancel lands within a second there too, the solvers call
:func:`checkpoint` once per iteration: inside :func:`cancellable` (the napari dock's
worker thread) it raises :class:`Cancelled` once the given event is set; anywhere else
it does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Cancelled", "Progress", "cancellable", "checkpoint", "drain"]

_local = threading.local()  # the running thread's stop event and check hook


class Cancelled(Exception):  # noqa: N818 (a request, not a fault)
    """The work was asked to stop (raised by :func:`checkpoint`)."""


@contextmanager
def cancellable(stop: threading.Event | None = None,
                on_check: Callable[[], None] | None = None) -> Iterator[None]:
    """Within the block, :func:`checkpoint` in this thread raises :class:`Cancelled`
    once ``stop`` is set (and calls ``on_check``, e.g. to time the checks)."""
    previous = getattr(_local, "state", None)
    _local.state = (stop, on_check)
    try:
        yield
    finally:
        _local.state = previous


def checkpoint() -> None:
    """Where a long loop may stop: raises :class:`Cancelled` if the running thread's
    work was asked to stop (see :func:`cancellable`); otherwise a no-op."""
    state = getattr(_local, "state", None)
    if state is None:
        return
    stop, on_check = state
    if on_check is not None:
        on_check()
    if stop is not None and stop.is_set():
        raise Cancelled("cancelled")


@dataclass(frozen=True)
class Progress:
    """One progress event: ``step`` of ``total`` done, with a message.

    Attributes
    ----------
    message : str
        What is running (shown next to the bar).
    step, total : int
        Work done and work in all (``total`` ≥ 1).
    info : dict
        Optional numbers of the step (e.g. training losses), empty by default.
    """

    message: str
    step: int
    total: int
    info: dict = field(default_factory=dict, compare=False)


def drain(gen: Generator, on_event: Callable[[Any], None] | None = None) -> Any:
    """Run ``gen`` to the end, passing each event to ``on_event``; return its value."""
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)
