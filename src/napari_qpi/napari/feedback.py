"""What the extraction dock tells the user during and after a run.

A bar with the fraction done (of the current step; of the whole batch over several
layers), the step's name with the time spent and the time left, and a read-only,
word-wrapped, scrolling box with every result of the run (each layer of a batch under
its name). Long messages wrap instead of widening the dock, and a long result scrolls
instead of being clipped when other docks take the height.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from magicgui.widgets import Label, ProgressBar, TextEdit

if TYPE_CHECKING:  # pragma: no cover
    from ..progress import Progress

#: Resolution of the bar (per mille: a long step still moves it).
_BAR_MAX = 1000


def _no_widening(widget) -> None:
    """Let the dock's width decide the widget's, never the text's length."""
    from qtpy.QtWidgets import QSizePolicy

    widget.native.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    widget.native.setMinimumWidth(0)


class RunFeedback:
    """The progress label, bar and result box of the extraction dock.

    Attributes
    ----------
    status : magicgui.widgets.Label
        The running step, the fraction done, time spent and left.
    bar : magicgui.widgets.ProgressBar
        Fraction done: of the current step, or of the batch over several layers.
    result : magicgui.widgets.TextEdit
        Every result of the run (read-only).
    """

    def __init__(self) -> None:
        from qtpy.QtWidgets import QTextEdit

        self.status = Label(label="progress", value="",
                            tooltip="the running method, its step, the fraction of it "
                                    "done, time spent and left")
        self.status.native.setWordWrap(True)
        _no_widening(self.status)
        self.bar = ProgressBar(label="done", value=0, min=0, max=_BAR_MAX,
                               tooltip="fraction of the current step done (of the whole "
                                       "batch when several layers run)")
        self.result = TextEdit(label="result", value="",
                               tooltip="quality of each fit (residuals, whiteness), scores "
                                       "against a ground truth, warnings; every layer of "
                                       "a batch")
        self.result.native.setReadOnly(True)
        self.result.native.setLineWrapMode(QTextEdit.WidgetWidth)
        self.result.native.setMinimumHeight(120)
        _no_widening(self.result)
        self._n = 1
        self._shown: list[str] = []
        self._step = ("", 0.0)  # the step's message and when it started
        self._started = 0.0  # when the run started

    def widgets(self) -> list:
        """The widgets to put into the dock, in order."""
        return [self.status, self.bar, self.result]

    def start(self, n: int, message: str) -> None:
        """A run over ``n`` layers begins: clear the bar and the results."""
        self._n, self._shown = max(int(n), 1), []
        self._started = time.perf_counter()
        self._step = ("", self._started)
        self.bar.value = 0
        # the bar refills at each step of one layer: its text says of what it is a share
        what = f"of {self._n} layers" if self._n > 1 else "of this step"
        self.bar.native.setFormat(f"%p % {what}")
        self.status.value = message
        self.result.value = ""

    def progress(self, event: Progress) -> float:
        """Show one progress event; return the fraction the bar shows (0–1).

        ``event.info["request"]`` (the layer's index in a batch) places the step within
        the batch; a step's time left is extrapolated from the time it has taken.
        """
        now = time.perf_counter()
        index = int(event.info.get("request", 0))
        step = event.step / event.total if event.total else 0.0
        step = min(max(step, 0.0), 1.0)
        name = event.info.get("step_name", event.message)
        if name != self._step[0]:
            self._step = (name, now)
        spent = now - self._step[1]
        text = f"{event.message}\n{100 * step:.0f} % of this step, {spent:.0f} s"
        if 0.05 <= step < 1:
            text += f", about {spent * (1 - step) / step:.0f} s left"
        # the steps' own times restart at each step: the whole run's time beside them
        text += f"\n{now - self._started:.0f} s since the run started"
        fraction = (index + step) / self._n
        self.status.value = text
        self.bar.value = round(_BAR_MAX * fraction)
        return fraction

    def show(self, name: str, text: str) -> None:
        """Add a finished layer's result (under its name when several run)."""
        self._shown.append(f"{name}\n{text}" if self._n > 1 else text)
        self.result.value = "\n\n".join(self._shown)
        if self._n > 1:
            self.bar.value = round(_BAR_MAX * len(self._shown) / self._n)

    def preview(self, name: str, text: str) -> None:
        """Show a layer's first, provisional result below the finished ones; the next
        :meth:`show` replaces it."""
        shown = self._shown + [f"{name}\n{text}" if self._n > 1 else text]
        self.result.value = "\n\n".join(shown)

    def failed(self, name: str) -> None:
        """A layer of the run failed: say so beside the others' results."""
        self.show(name, "failed")

    def finish(self, cancelled: bool) -> None:
        """The run ended: ``"cancelled"``, or ``"done in … s"`` with a full bar."""
        if cancelled:
            self.status.value = "cancelled"
            return
        self.status.value = f"done in {time.perf_counter() - self._started:.0f} s"
        self.bar.native.setFormat("done")
        self.bar.value = _BAR_MAX
