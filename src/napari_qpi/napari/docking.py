"""Docks that fit a laptop screen: a widget's body scrolls instead of growing the window.

napari lays its right-hand docks one above the other, and the main window is never
shorter than the sum of their minimum heights: the extraction dock alone (684 px), the
read-outs (906 px) and the q-space canvas made the window 2,000 px tall, so on a
laptop the bottom docks, and the result text in them, fell off the screen. napari docks
a magicgui widget's ``.native``, which for ``Container(scrollable=True)`` is the inner
widget, not the scroll area (napari issue 4579, magicgui issue 431); so the body is
moved into a scroll area of our own, inside the docked widget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from magicgui.widgets import Container

#: Height a dock may shrink to (its body then scrolls).
MIN_HEIGHT = 120


def scroll_body(container: Container, min_height: int = MIN_HEIGHT) -> None:
    """Move everything in ``container``'s layout into a vertical scroll area in it.

    Call once, after the last widget is added. magicgui keeps its widgets (and their
    labels, visibility and values); only their Qt parent changes. The width stays the
    body's minimum width, so nothing is clipped sideways.
    """
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

    layout = container.native.layout()
    body = QWidget()
    inner = QVBoxLayout(body)
    inner.setContentsMargins(layout.contentsMargins())
    inner.setSpacing(layout.spacing())
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            inner.addWidget(item.widget())
        elif item.layout() is not None:
            inner.addLayout(item.layout())
        else:
            inner.addItem(item)
    scroll = QScrollArea()
    scroll.setObjectName("qpi_scroll_body")
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(body)
    scroll.setMinimumHeight(min_height)
    bar = scroll.verticalScrollBar().sizeHint().width()
    scroll.setMinimumWidth(body.minimumSizeHint().width() + bar)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(scroll)


def scroll_area(container: Container):
    """The scroll area :func:`scroll_body` put into ``container`` (None without one)."""
    from qtpy.QtWidgets import QScrollArea

    return container.native.findChild(QScrollArea, "qpi_scroll_body")


def reveal(container: Container, widget) -> None:
    """Scroll ``container``'s body so that ``widget`` (magicgui) is in view: a run's
    progress and result sit at the bottom of a dock that may be shorter than its body."""
    scroll = scroll_area(container)
    if scroll is not None:
        scroll.ensureWidgetVisible(widget.native)
