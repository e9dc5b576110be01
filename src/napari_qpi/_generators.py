"""Long work in napari-qpi is a generator of progress events that returns its result."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any


def drain(gen: Generator, on_event: Callable[[Any], None] | None = None) -> Any:
    """Run ``gen`` to the end, passing each event to ``on_event``; return its value."""
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)
