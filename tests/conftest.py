"""Shared fixtures: collect napari notifications during a test; one core per
pytest-xdist worker."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config):
    # Under pytest-xdist (`-n 2`) each worker gets one core: torch's and extract()'s own
    # threads would otherwise oversubscribe the machine. Set before torch is imported.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("NAPARI_QPI_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    # The longest tests start first: pytest-xdist hands each worker its first chunk of
    # tests in collection order, so a 4-minute test collected late runs alone at the end
    # while the other core idles (the full run took 9 min for 7.5 min of work per core).
    first = [i for i in items if i.get_closest_marker("longest")]
    items[:] = first + [i for i in items if not i.get_closest_marker("longest")]


@pytest.fixture
def notes():
    """Messages of the napari notifications emitted during the test, as a list."""
    from napari.utils.notifications import notification_manager

    seen: list = []

    def keep(event):
        seen.append(event)  # a napari Notification: .message, .severity

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)
