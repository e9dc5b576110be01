"""The extraction dock widget: run any registered method on one or several layers.

The work runs in a :func:`napari.qt.threading.thread_worker` over the library's progress
generator (napari registers it as a task, so closing the window asks first and cancels
it); Cancel stops the run within one solver iteration (a stop event the solvers check,
:func:`napari_qpi.progress.checkpoint`), not only at the next progress event. Every
label write is guarded, so a worker finishing after the window closed does nothing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    PushButton,
    Select,
    SpinBox,
    create_widget,
)

from . import compute, jobs
from .docking import reveal, scroll_body
from .feedback import RunFeedback
from .layers import observation_candidates
from .reader import channel_names, reload_channel

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from ..progress import Progress


def _choices(layers) -> list[tuple[str, object]]:
    return [(layer.name, layer) for layer in observation_candidates(layers)]


def _qt_alive(widget) -> bool:
    """Whether the Qt object behind a magicgui widget still exists."""
    try:
        from qtpy import sip

        return not sip.isdeleted(widget.native)
    except ImportError:  # pragma: no cover - PySide
        import shiboken6

        return shiboken6.isValid(widget.native)


class ExtractionWidget(Container):
    """Extract the single-scatterer kernel of an Image layer (or of several).

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Injected by napari when the widget is docked.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        import napari.layers

        from .energy import install_energy_overlay

        super().__init__(labels=True)
        self._viewer = napari_viewer
        layers = napari_viewer.layers
        self.image = ComboBox(label="observation", choices=lambda _w: _choices(layers),
                              tooltip="(Y, X) map or (E, Y, X) stack of dI/dV; outputs and "
                                      "ground truths are never offered")
        self.channel = ComboBox(label="channel", choices=lambda _w: self._channel_names(),
                                visible=False,
                                tooltip="channel of the Nanonis file to read as dI/dV")
        self.method = ComboBox(label="method", choices=lambda _w: compute.methods())
        self.points = create_widget(
            annotation=napari.layers.Points | None, label="positions",
            options={"tooltip": "scatterers for guided mode (needed by methods that say "
                                "so; ignored by blind-only ones)"})
        self.auto_size = CheckBox(label="auto window", value=True,
                                  tooltip="let extract() choose the kernel window from "
                                          "the data; the chosen size is shown after a run")
        self.kernel_size = SpinBox(label="kernel size (px)", value=65, min=3, max=513,
                                   step=2, enabled=False,
                                   tooltip="odd window of the extracted kernel, in pixels")
        self.n_types = ComboBox(
            label="defect types", choices=["1", "2", "3", "4", "auto"], value="1",
            tooltip="defect species in the map: one kernel and one scatterer map per "
                    "species; 'auto' chooses 1–4 by held-out prediction (blind: positions "
                    "are not used)")
        self.first_look = CheckBox(
            label="quick first look", value=True,
            tooltip="with auto: show the two-stage network's kernel within seconds, then "
                    "refine it in the background; the result says what the refinement "
                    "gained. Cancel keeps the first look")
        self.one_view = CheckBox(
            label="one view (faster)", value=False,
            tooltip="auto/refine: fit the learned prior from the map as it is, not from "
                    "its four quarter turns: about half the time on a stack or grid (a "
                    "64×256×256 grid on two cores: about 2 min instead of 4); on our "
                    "validation stacks the kernels came out less accurate (median tail "
                    "similarity 0.71 against 0.74)")
        self.device = ComboBox(label="device", choices=compute.devices(),
                               tooltip="where learned methods and torch solvers run")
        self.preprocess = Select(
            label="preprocess", choices=list(compute.preprocessing_steps()), value=[],
            tooltip="applied in order to a copy of the data; the layer is not changed. "
                    "None chosen: the safe steps the map needs (background; line "
                    "offsets and Bragg peaks where found) are applied and listed")
        self.run_button = PushButton(text="Run", tooltip="extract the kernel of the "
                                                         "observation in the background")
        self.cancel_button = PushButton(text="Cancel", enabled=False,
                                        tooltip="stop the run at its next progress step")
        self.save_button = PushButton(text="Save outputs…", enabled=False,
                                      tooltip="kernel, activation, residual, uncertainty, "
                                              "scores and parameters in one .npz")
        self.batch = Select(label="batch", choices=lambda _w: _choices(layers), value=[],
                            tooltip="observations to extract one after another with "
                                    "the options above")
        self.batch_button = PushButton(text="Run batch",
                                       tooltip="extract every layer chosen under batch")
        self.feedback = RunFeedback()
        self.status, self.bar = self.feedback.status, self.feedback.bar
        self.result = self.feedback.result
        self.extend([self.image, self.channel, self.method, self.points, self.auto_size,
                     self.kernel_size, self.n_types, self.first_look, self.one_view,
                     self.device, self.preprocess, self.run_button, self.cancel_button,
                     self.save_button, self.batch, self.batch_button,
                     *self.feedback.widgets()])
        scroll_body(self)  # the dock scrolls: the window stays on a laptop screen
        self.worker = None
        self._stop = threading.Event()
        self._progress = None
        self.last: jobs.Done | None = None  # the last extraction shown (for Save)
        self.method.value = compute.default_method()
        self._method_tooltips()
        self.method.changed.connect(self._method_tooltips)
        self.auto_size.changed.connect(self._auto_changed)
        self.image.changed.connect(self._channels)
        self.channel.changed.connect(self._reload_channel)
        self.run_button.changed.connect(self.run)
        self.batch_button.changed.connect(self.run_batch)
        self.cancel_button.changed.connect(self.cancel)
        self.save_button.changed.connect(self.save)
        self._viewer.layers.selection.events.active.connect(self._follow_active)
        self.native.destroyed.connect(self._cancel_silently)
        install_energy_overlay(napari_viewer)
        self._channels()

    # -- choices ------------------------------------------------------------------
    def reset_choices(self, *_args) -> None:
        """Refresh layer and method lists (napari calls this when layers change)."""
        super().reset_choices()
        self._method_tooltips()
        self._follow_active()

    def _follow_active(self, *_args) -> None:
        """Preselect the active layer when it can be an observation."""
        active = self._viewer.layers.selection.active
        if active is not None and active in self.image.choices:
            self.image.value = active

    def _method_tooltips(self, *_args) -> None:
        """Tooltips from the registry: the box says what the chosen method needs."""
        from qtpy.QtCore import Qt

        box = self.method.native
        for i in range(box.count()):
            box.setItemData(i, compute.method_help(box.itemText(i)), Qt.ToolTipRole)
        name = self.method.value or ""
        self.method.tooltip = compute.method_help(name)
        self.first_look.enabled = name == "auto"
        self.one_view.enabled = name in ("auto", "refine")  # the latent fit's views
        method = compute.registry().get(name)
        if method is None:
            return
        if method.needs_positions:
            tip = f"scatterers marked as Points: required by {name}"
        elif method.accepts_positions:
            tip = f"optional scatterers (Points) for guided mode; {name} runs blind without"
        else:
            tip = f"not used: {name} is blind only"
        self.points.tooltip = tip

    def _auto_changed(self, auto: bool) -> None:
        self.kernel_size.enabled = not auto

    def _channel_names(self) -> list[str]:
        image = self.__dict__.get("image")  # None while the form is being built
        return channel_names(image.value if image is not None else None)

    def _channels(self, *_args) -> None:
        """Offer the channels of a multi-channel file (Nanonis .3ds/.sxm)."""
        self.channel.visible = bool(self._channel_names())
        with self.channel.changed.blocked():
            self.channel.reset_choices()
            current = self.image.value.metadata.get("channel") if self.image.value else None
            if current in self.channel.choices:
                self.channel.value = current

    def _reload_channel(self, name: str) -> None:
        from .energy import update_slice_contrast

        if self.image.value is not None and name and reload_channel(self.image.value,
                                                                    name):
            # the new channel's contrast at the shown energy now, not at the next step
            update_slice_contrast(self._viewer)

    # -- running ------------------------------------------------------------------
    def _request(self, layer):
        return compute.prepare(
            layer, method=self.method.value, points=self.points.value,
            kernel_size=None if self.auto_size.value else self.kernel_size.value,
            device=self.device.value, preprocess=tuple(self.preprocess.value),
            n_types=self.n_types.value if self.n_types.value == "auto"
            else int(self.n_types.value), first_look=self.first_look.value,
            one_view=self.one_view.value)

    def run(self, *_args):
        """Extract the chosen observation in a worker thread; returns the worker (or None)."""
        from napari.utils.notifications import show_error

        if self.image.value is None:
            show_error("Extraction: add or choose an Image layer with the observation")
            return None
        return self._start([self.image.value])

    def run_batch(self, *_args):
        """Extract every layer chosen under *batch*, one after another."""
        from napari.utils.notifications import show_error

        if not self.batch.value:
            show_error("Extraction: choose the layers to extract under 'batch' first")
            return None
        return self._start(list(self.batch.value))

    def _start(self, layers):
        from napari.qt.threading import thread_worker
        from napari.utils import progress
        from napari.utils.notifications import show_error

        if self.worker is not None:
            return None
        requests = []
        for layer in layers:
            try:
                requests.append(self._request(layer))
            except ValueError as exc:  # nothing starts: the user fixes the options first
                name = f"{layer.name}: " if len(layers) > 1 else ""
                show_error(jobs.message(ValueError(f"{name}{exc}")))
                return None
        what = requests[0].source.name if len(requests) == 1 else f"{len(requests)} layers"
        self.feedback.start(len(requests), f"{requests[0].method} on {what}…")
        reveal(self, self.feedback.bar)  # a short dock scrolls to the progress
        self._progress = progress(total=0, desc=f"QPI extraction ({requests[0].method})")
        self._stop = threading.Event()  # Cancel stops the solvers within an iteration
        worker = thread_worker(jobs.batch_job, start_thread=False)(requests, self._stop)
        worker.yielded.connect(self._on_yielded)
        worker.aborted.connect(self._on_aborted)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.run_button.enabled = self.batch_button.enabled = False
        self.cancel_button.enabled = True
        worker.start()
        return worker

    def cancel(self, *_args) -> None:
        """Ask the worker to stop before the next progress event."""
        if self.worker is not None:
            self.cancel_button.enabled = False
            self._stop.set()
            self.worker.quit()

    def _cancel_silently(self, *_args) -> None:
        """The dock is being deleted (viewer closed): stop the worker, show nothing."""
        worker, self.worker = self.worker, None
        if worker is not None:
            self._stop.set()
            worker.quit()
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _on_yielded(self, event) -> None:
        if not _qt_alive(self):
            return
        if isinstance(event, jobs.Done):
            self._show(event)
        elif isinstance(event, jobs.Failed):
            from napari.utils.notifications import show_error

            name = event.request.source.name if event.request is not None else "run"
            self.feedback.failed(name)
            show_error(jobs.message(event.error))
        else:
            self._on_progress(event)

    def _on_progress(self, event: Progress) -> None:
        self.feedback.progress(event)
        bar = self._progress  # local: updating the bar may process queued events
        if bar is None:
            return
        if bar.total != event.total:
            bar.total = event.total
        bar.set_description(event.message)
        bar.update(event.step - bar.n)

    def _show(self, done: jobs.Done) -> None:
        from napari.utils.notifications import show_error, show_warning

        from .results import show_result

        extraction, source = done.extraction, done.request.source
        found = compute.scores(source, extraction)
        try:
            show_result(self._viewer, source, extraction, scores=found,
                        reference=done.observation)
        except Exception as exc:  # a result the layers cannot take: tell, don't crash
            show_error(jobs.message(exc))
            return
        if done.first_look:  # shown now; the refined result replaces it
            self.feedback.preview(source.name, "first look (two-stage; auto refines it "
                                  "in the background):\n" + jobs.summary(extraction, found))
            reveal(self, self.result)
            return
        self.last = done
        self.save_button.enabled = True
        self.feedback.show(source.name, jobs.summary(extraction, found))
        reveal(self, self.result)
        if extraction.info.get("kernel_size_auto") and self.auto_size.value:
            self.kernel_size.value = int(extraction.info.get("kernel_size",
                                                             extraction.kernel.shape[-1]))
        for warning in jobs.quality_warnings(extraction.info):
            show_warning(f"{source.name}: {warning}")

    def _on_aborted(self) -> None:
        from napari.utils.notifications import show_info

        if not _qt_alive(self):
            return
        self.feedback.finish(cancelled=True)
        show_info("Extraction cancelled")

    def _on_finished(self) -> None:
        self.worker = None
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        if not _qt_alive(self):
            return
        if self.status.value != "cancelled":
            self.feedback.finish(cancelled=False)
        self.run_button.enabled = self.batch_button.enabled = True
        self.cancel_button.enabled = False

    # -- saving -------------------------------------------------------------------
    def save(self, *_args, path=None):
        """Write the last run's outputs: one ``.npz``, or TIFF stacks for a ``.tif`` path.

        Without ``path`` a file dialog asks; returns what was written (or None).
        """
        from napari.utils.notifications import show_error, show_info

        from .saving import save_run, save_tiffs

        if self.last is None:
            show_error("Save: run an extraction first")
            return None
        request, extraction = self.last.request, self.last.extraction
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            path, _ = QFileDialog.getSaveFileName(
                self.native, "Save extraction", f"{request.source.name} kernel.npz",
                "NumPy archive, all outputs (*.npz);;TIFF stacks, one per output (*.tif)")
            if not path:
                return None
        energies = compute.energies_of(request.source)
        try:
            if str(path).lower().endswith((".tif", ".tiff")):
                out = save_tiffs(path, extraction, energies=energies,
                                 parameters=request.parameters())
            else:
                out = save_run(path, extraction, parameters=request.parameters(),
                               scores=compute.scores(request.source, extraction),
                               energies=energies)
        except OSError as exc:
            show_error(f"Save: cannot write {path}: {exc.strerror or exc}")
            return None
        show_info(f"Saved the extraction to {out}")
        return out
