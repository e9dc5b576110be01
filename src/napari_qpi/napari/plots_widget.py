"""The read-out dock: radial profile, linecut and E(q) of the kernel and the map.

Four matplotlib panels in meV, Å and Å⁻¹, redrawn when the energy slider moves or
another layer, direction or symmetry is chosen: the kernel slice at the shown energy
(radial profile and a linecut along the chosen direction), the E(q) dispersion of the
kernel stack and of the observation, with the shown energy and the ring radius
(:func:`.readouts.ring_radius`) marked, and the observation's q-space image at that
energy, symmetrised (C_n, mirror) on request. The E(q) rows are normalised per energy by
default (dI/dV changes by orders of magnitude across a bias sweep) and the q axes are
zoomed on the signal (:func:`.readouts.signal_range`). The numbers drawn are kept in
:attr:`PlotsWidget.data`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox

from . import readouts
from .docking import scroll_body
from .layers import observation_candidates, role_of

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer


def kernel_candidates(layers) -> list[Layer]:
    """3-D or 2-D Image layers holding kernels: extracted kernels first (each species'
    of a several-species run), then truths."""
    import re

    from napari.layers import Image

    kernel_name = re.compile(r" kernel(, species \d+)?$")
    kernels = [layer for layer in layers if isinstance(layer, Image)
               and layer.ndim in (2, 3) and not layer.rgb
               and (kernel_name.search(layer.name) and role_of(layer) == "result"
                    or role_of(layer) == "truth")]
    return sorted(kernels, key=lambda layer: role_of(layer) != "result")


def _pixel_size(layer: Layer) -> float | None:
    from .compute import pixel_size_of

    return pixel_size_of(layer)


class PlotsWidget(Container):
    """QPI read-outs of a kernel layer and an observation layer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Injected by napari when the widget is docked.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        from .energy import install_energy_overlay

        super().__init__(labels=True)
        self._viewer = napari_viewer
        layers = napari_viewer.layers
        self.kernel = ComboBox(
            label="kernel", nullable=True,
            choices=lambda _w: [(la.name, la) for la in kernel_candidates(layers)],
            tooltip="an extracted kernel (or a true kernel) to read out")
        self.observation = ComboBox(
            label="observation", nullable=True,
            choices=lambda _w: [(la.name, la) for la in observation_candidates(layers)],
            tooltip="the map whose E(q) is drawn beside the kernel's")
        self.angle = FloatSpinBox(label="direction (°)", value=0.0, min=-180, max=180,
                                  step=5, tooltip="direction of the linecut and of the "
                                                  "E(q) cut, from +x (+q_x)")
        self.average = CheckBox(label="average over directions", value=True,
                                tooltip="E(q) averaged over all q-directions (rings); "
                                        "off: the cut along the direction above")
        self.normalise = CheckBox(label="normalise per energy", value=True,
                                  tooltip="scale each energy's E(q) row to its own peak "
                                          "(beyond q = 0), so weak energies are not black "
                                          "beside strong ones; off: one log colour scale")
        self.symmetry = ComboBox(label="symmetrise q-space",
                                 choices=list(readouts.SYMMETRIES), value="none",
                                 tooltip="average the observation's q-space image over "
                                         "the crystal's rotations (and a mirror)")
        self.extend([self.kernel, self.observation, self.angle, self.average,
                     self.normalise, self.symmetry])
        self.figure = Figure(figsize=(4, 10), constrained_layout=True)
        self.axes = self.figure.subplots(4, 1)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(700)
        self.native.layout().addWidget(self.canvas)
        scroll_body(self)  # the four panels scroll: the window stays on a laptop screen
        self.data: dict = {}
        self._cache: dict = {}
        self._watched: set[int] = set()
        for widget in (self.kernel, self.observation, self.angle, self.average,
                       self.normalise, self.symmetry):
            widget.changed.connect(self.refresh)
        napari_viewer.dims.events.current_step.connect(self._on_step)
        self.native.destroyed.connect(self._disconnect)
        install_energy_overlay(napari_viewer)
        self.reset_choices()

    def reset_choices(self, *_args) -> None:
        """Refresh the layer lists (napari calls this when layers change)."""
        shown = (self.kernel.value, self.observation.value)
        super().reset_choices()
        for box in (self.kernel, self.observation):
            layers = [c for c in box.choices if c is not None]
            if box.value is None and layers:
                with box.changed.blocked():
                    box.value = layers[0]
        # napari calls this at every layer added or removed (a run adds five): redraw
        # only when the layers shown changed; their new data redraw through _watch
        if (self.kernel.value, self.observation.value) != shown or not self.data:
            self.refresh()

    def _disconnect(self, *_args) -> None:
        """The dock is being deleted: stop listening to the viewer and its layers."""
        self._viewer.dims.events.current_step.disconnect(self._on_step)
        for layer in self._viewer.layers:
            if id(layer) in self._watched:
                layer.events.data.disconnect(self.refresh)

    def _slices(self) -> tuple:
        """The energy index each shown layer is drawn at."""
        from .energy import energy_index

        return tuple(None if layer is None else energy_index(self._viewer, layer)
                     for layer in (self.kernel.value, self.observation.value))

    def _on_step(self, *_args) -> None:
        # napari re-emits the step when layers are added: redraw only a new slice
        if self._slices() != self.data.get("slices"):
            self.refresh()

    def _energies(self, layer: Layer) -> np.ndarray:
        from .compute import energies_of

        energies = energies_of(layer)
        return np.zeros(1) if energies is None else energies

    def refresh(self, *_args) -> dict:
        """Recompute and redraw every panel; return :attr:`data`."""
        from .energy import energy_index

        for ax in self.axes:
            ax.clear()
        self.data = {}
        self._watch(self.kernel.value, self.observation.value)
        self.data["slices"] = self._slices()
        angle = None if self.average.value else float(self.angle.value)
        kernel, obs = self.kernel.value, self.observation.value
        if kernel is not None:
            px = _pixel_size(kernel)
            stack = np.asarray(kernel.data, dtype=float)
            stack = stack[None] if stack.ndim == 2 else stack
            i = energy_index(self._viewer, kernel) or 0
            energies = self._energies(kernel)
            r, prof = readouts.radial_profile(stack[i], px)
            t, cut = readouts.linecut(stack[i], float(self.angle.value), px)
            q, eq = self._cached(kernel, angle, px, False)
            self.data.update(energy=float(energies[i]), radius=r, profile=prof,
                             linecut=(t, cut), kernel_eq=(q, energies, eq),
                             kernel_pixel_size=px)
            self._profile(r, prof, t, cut, px, energies[i])
            self._eq(self.axes[1], "kernel", q, energies, eq, px,
                     f"E(q) of {kernel.name}", energies[i])
        if obs is not None:
            px = _pixel_size(obs)
            energies = self._energies(obs)
            q, eq = self._cached(obs, angle, px, True)
            i = energy_index(self._viewer, obs) or 0
            self.data["observation_eq"] = (q, energies, eq)
            self._eq(self.axes[2], "observation", q, energies, eq, px,
                     f"E(q) of {obs.name}", energies[i])
            data = np.asarray(obs.data, dtype=float)
            image = readouts.qspace(data[i] if data.ndim == 3 else data)
            image = readouts.symmetrise(image, *readouts.SYMMETRIES[self.symmetry.value])
            self.data["observation_q"] = image
            self._qimage(image, px, f"{obs.name} at {energies[i]:.4g} meV",
                         self.data["observation_q_range"])
        for ax in self.axes:
            if not ax.has_data():
                ax.set_axis_off()
        self.canvas.draw_idle()
        return self.data

    def _watch(self, *layers) -> None:
        """Redraw when a shown layer gets new data (a re-run updates it in place)."""
        for layer in layers:
            if layer is not None and id(layer) not in self._watched:
                self._watched.add(id(layer))
                layer.events.data.connect(self.refresh)

    def _cached(self, layer: Layer, angle, px, window: bool):
        """E(q) of a layer, recomputed only when its data or the direction change (the
        slider moving redraws without a new FFT of the whole stack)."""
        key = (id(layer), id(layer.data), angle, px, window)
        if key not in self._cache:
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = readouts.dispersion(np.asarray(layer.data, dtype=float),
                                                   angle, px, window=window)
        return self._cache[key]

    def _profile(self, r, prof, t, cut, px, energy) -> None:
        ax = self.axes[0]
        unit = "Å" if px else "px"
        ax.plot(r, prof, label="radial average")
        ax.plot(t[t >= 0], cut[t >= 0], lw=0.8, label=f"cut at {self.angle.value:g}°")
        ax.plot(-t[t < 0], cut[t < 0], lw=0.8, ls="--", label="opposite side")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_xlabel(f"r ({unit})")
        ax.set_ylabel("kernel")
        ax.set_title(f"kernel at {energy:.4g} meV", fontsize=9)
        ax.legend(fontsize=7)

    def _qimage(self, image, px, title, q_range: float) -> None:
        ax = self.axes[3]
        h, w = image.shape
        dq_y, dq_x = readouts.q_axis(h, px), readouts.q_axis(w, px)
        extent = (-(w // 2 + 0.5) * dq_x, (w - w // 2 - 0.5) * dq_x,
                  (h - h // 2 - 0.5) * dq_y, -(h // 2 + 0.5) * dq_y)
        ax.imshow(np.log1p(image / (np.median(image) + 1e-30)), cmap="magma",
                  extent=extent)
        unit = "Å⁻¹" if px else "rad/px"
        ax.set_xlabel(f"q_x ({unit})")
        ax.set_ylabel(f"q_y ({unit})")
        ax.set_xlim(-q_range, q_range)
        ax.set_ylim(q_range, -q_range)  # imshow's orientation: q_y grows downwards
        symmetry = self.symmetry.value
        ax.set_title(title + ("" if symmetry == "none" else f", {symmetry}"), fontsize=9)

    def _eq(self, ax, what: str, q, energies, eq, px, title, energy) -> None:
        """Draw an E(q) cut with the shown energy, the ring radius and the q range
        fitted to the signal; keep what was drawn in ``data[f"{what}_…"]``."""
        unit = "Å⁻¹" if px else "rad/px"
        # only q = 0 is left out (a map's mean, its window's leakage): a grid whose
        # signal is at the first few q must peak at 1 there, not saturate
        q_min = 0.5 * float(np.mean(np.abs(np.diff(q))))
        ring = readouts.ring_radius(q, eq, q_min=q_min)
        q_range = readouts.signal_range(q, eq, q_min=q_min)
        if self.normalise.value:
            show, limits = readouts.normalise(q, eq, q_min), (0.0, 1.0)
        else:
            show, limits = np.log1p(eq / (np.median(eq) + 1e-30)), (None, None)
        self.data.update({f"{what}_eq_shown": show, f"{what}_ring": (energies, ring),
                          f"{what}_q_range": q_range})
        signed = q.min() < 0
        if len(energies) > 1:
            ax.pcolormesh(q, energies, show, shading="nearest", cmap="magma",
                          vmin=limits[0], vmax=limits[1])
            ax.axhline(energy, color="cyan", lw=0.8)
            for sign in (1, -1) if signed else (1,):
                ax.plot(sign * ring, energies, "o", ms=3, mfc="none", color="lime",
                        label="ring radius" if sign == 1 else None)
            ax.set_ylabel("E (meV)")
        else:
            ax.plot(q, show[0] if self.normalise.value else eq[0])
            # NaN: the row has no peak beyond q = 0, so there is no ring to mark
            signs = ((1, -1) if signed else (1,)) if np.isfinite(ring[0]) else ()
            for sign in signs:
                ax.axvline(sign * ring[0], color="lime", lw=0.8, ls="--",
                           label="ring radius" if sign == 1 else None)
            ax.set_ylabel("|FFT| / peak" if self.normalise.value else "|FFT|")
        ax.set_xlim(-q_range if signed else 0.0, q_range)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper right")
        ax.set_xlabel(f"q ({unit})")
        ax.set_title(title, fontsize=9)
