"""Shared fixtures: collect napari notifications during a test."""

from __future__ import annotations

import pytest


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
