"""Long work in napari-qpi is a generator of :class:`Progress` events that returns its result.

One event type and one :func:`drain` serve every generator (extraction, SBD, network
inference, training, simulation): the CLI shows the events as a progress bar, the napari
widget as a napari progress, and a script simply drains them. Closing a generator between
two events cancels the work.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Progress", "drain"]


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
