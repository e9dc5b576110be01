"""The extraction dock widget: run any registered method on an Image layer.

The work runs in a :func:`napari.qt.threading.thread_worker` over the library's
progress generator, so the viewer stays responsive and Cancel stops the run between
two progress events.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from magicgui.widgets import (
    ComboBox,
    Container,
    Label,
    PushButton,
    Select,
    SpinBox,
    create_widget,
)

from . import compute
from .layers import is_result

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from ..extraction.extract import Extraction, Progress


@dataclass(frozen=True)
class _Failed:
    """What the worker returns instead of raising: shown as a notification."""

    error: Exception


def _job(steps: Generator) -> Generator:
    """Run the library generator, turning an exception into a :class:`_Failed` result."""
    try:
        return (yield from steps)
    except Exception as exc:  # shown to the user; the viewer stays usable
        return _Failed(exc)


def _message(exc: Exception) -> str:
    if isinstance(exc, ValueError):  # user-facing validation messages
        return f"Extraction: {exc}"
    return f"Extraction failed ({type(exc).__name__}): {exc}"


class ExtractionWidget(Container):
    """Extract the single-scatterer kernel of an Image layer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Injected by napari when the widget is docked.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        import napari.layers

        from ..extraction.extract import DEFAULT_KERNEL_SIZE

        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.image = create_widget(annotation=napari.layers.Image, label="observation",
                                   options={"tooltip": "(Y, X) map or (E, Y, X) stack"})
        self.method = ComboBox(label="method", choices=lambda _w: compute.methods(),
                               tooltip="extraction methods registered in napari_qpi")
        self.points = create_widget(
            annotation=napari.layers.Points | None, label="positions",
            options={"tooltip": "scatterers for guided mode (needed by 'wiener')"})
        self.kernel_size = SpinBox(label="kernel size (px)", value=DEFAULT_KERNEL_SIZE,
                                   min=3, max=513, step=2,
                                   tooltip="odd window of the extracted kernel")
        self.device = ComboBox(label="device", choices=compute.devices())
        self.preprocess = Select(
            label="preprocess", choices=list(compute.preprocessing_steps()), value=[],
            tooltip="applied in order to a copy of the data; the layer is not changed")
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.scores = Label(label="result", value="")
        self.extend([self.image, self.method, self.points, self.kernel_size, self.device,
                     self.preprocess, self.run_button, self.cancel_button, self.scores])
        self.worker = None
        self._progress = None
        self._request: compute.Request | None = None
        self._steps: Generator | None = None
        if compute.default_method() in self.method.choices:
            self.method.value = compute.default_method()
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.image.changed.connect(self._fit_kernel_size)
        self._viewer.layers.selection.events.active.connect(self._follow_active)

    # -- choices ------------------------------------------------------------------
    def reset_choices(self, *_args) -> None:
        """Refresh layer and method lists (napari calls this when layers change)."""
        super().reset_choices()
        self._follow_active()

    def _follow_active(self, *_args) -> None:
        """Preselect the active layer when it is an Image, not one of our outputs."""
        active = self._viewer.layers.selection.active
        if active is not None and active in self.image.choices and not is_result(active):
            self.image.value = active

    def _fit_kernel_size(self, *_args) -> None:
        """Shrink the kernel window to the largest odd size that fits the image."""
        layer = self.image.value
        if layer is None or layer.ndim < 2:
            return
        fit = min(layer.data.shape[-2:])
        fit = fit if fit % 2 else fit - 1
        if 3 <= fit < self.kernel_size.value:
            self.kernel_size.value = fit

    # -- running ------------------------------------------------------------------
    def run(self, *_args):
        """Start an extraction in a worker thread; returns the worker (or None)."""
        from napari.qt.threading import thread_worker
        from napari.utils import progress
        from napari.utils.notifications import show_error

        if self.worker is not None:
            return None
        if self.image.value is None:
            show_error("Extraction: add or choose an Image layer with the observation")
            return None
        try:
            request = compute.prepare(
                self.image.value, method=self.method.value, points=self.points.value,
                kernel_size=self.kernel_size.value, device=self.device.value,
                preprocess=tuple(self.preprocess.value))
        except ValueError as exc:
            show_error(_message(exc))
            return None
        self._request = request
        self.scores.value = f"running {request.method} on {request.source.name}…"
        self._progress = progress(total=0, desc=f"QPI extraction ({request.method})")
        self._steps = request.steps()
        worker = thread_worker(_job, start_thread=False)(self._steps)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_returned)
        worker.aborted.connect(self._on_aborted)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        worker.start()
        return worker

    def cancel(self, *_args) -> None:
        """Ask the worker to stop before the next progress event."""
        if self.worker is not None:
            self.cancel_button.enabled = False
            self.worker.quit()

    def _on_progress(self, event: Progress) -> None:
        bar = self._progress  # local: updating the bar may process queued events
        if bar is None:
            return
        if bar.total != event.total:
            bar.total = event.total
        bar.set_description(event.message)
        bar.update(event.step - bar.n)

    def _on_returned(self, result: Extraction | _Failed) -> None:
        from napari.utils.notifications import show_error

        if isinstance(result, _Failed):
            self.scores.value = "failed"
            show_error(_message(result.error))
            return
        try:
            found = compute.show_result(self._viewer, self._request, result)
        except Exception as exc:  # a result the layers cannot take: tell, don't crash
            show_error(_message(exc))
            return
        self.scores.value = _summary(result, found)

    def _on_aborted(self) -> None:
        from napari.utils.notifications import show_info

        self.scores.value = "cancelled"
        show_info("Extraction cancelled")

    def _on_finished(self) -> None:
        self.worker = None
        if self._steps is not None:  # closes the library generator after a cancel
            self._steps.close()
            self._steps = None
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False


def _summary(result: Extraction, found: dict) -> str:
    """One line per fact: method, time, relative residual, scores when known."""
    lines = [f"{result.method}: {result.info.get('seconds', float('nan')):.1f} s, "
             f"relative residual {result.info.get('relative_residual', float('nan')):.2f}"]
    if found:
        lines.append(f"vs ground truth: kernel {found['kernel_similarity']:.2f}, "
                     f"tail {found['tail_similarity']:.2f}")
    return "\n".join(lines)
