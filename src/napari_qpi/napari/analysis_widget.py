"""The analysis dock: the stmpy/SIDAM chain on a chosen layer, one action at a time.

Lattice vectors (drawn as arrows on the map), the q-space image symmetrised about the
lattice's axes (in the q-space canvas), E(q) cuts along Γ–X/Γ–M or an angle, a band
fitted to a kernel stack and drawn over its E(q), Feenstra normalisation and lock-in
R/θ. The computation is :mod:`.analysis_actions`; this module only wires it. What was
last computed is kept in :attr:`AnalysisWidget.data`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton

from . import analysis_actions as act
from .docking import scroll_body

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

#: The actions offered, in the chain's order.
ACTIONS = ("Crop to rectangle", "Lattice vectors", "Align to lattice",
           "q-space (symmetrised)", "E(q) cut", "Dispersion fit", "Feenstra (dI/dV)/(I/V)",
           "Lock-in R/θ")


def _images(layers) -> list[Layer]:
    from napari.layers import Image

    return [la for la in layers if isinstance(la, Image) and la.ndim in (2, 3)
            and not la.rgb]


class AnalysisWidget(Container):
    """The analysis chain on napari layers.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Injected by napari when the widget is docked.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        super().__init__(labels=True)
        self._viewer = napari_viewer
        layers = napari_viewer.layers
        self.layer = ComboBox(label="layer", nullable=True,
                              choices=lambda _w: [(la.name, la) for la in _images(layers)],
                              tooltip="the map or kernel stack to analyse")
        self.action = ComboBox(label="action", choices=list(ACTIONS), value=ACTIONS[1])
        self.order = ComboBox(label="rotations", choices=[1, 2, 3, 4, 6], value=1,
                              tooltip="C_n average of the q-space image (1: none)")
        self.mirror = CheckBox(label="mirror (lattice axis)", value=False)
        self.direction = ComboBox(label="cut", choices=act.directions(None),
                                  tooltip="Γ–X, Γ–M, … of the measured lattice, an angle, "
                                          "or the average over directions (radial)")
        self.angle = FloatSpinBox(label="angle (°)", value=0.0, min=-180, max=180, step=5)
        self.model = ComboBox(label="band", choices=["parabolic", "linear"],
                              value="parabolic")
        self.second = ComboBox(label="current / Y", nullable=True,
                               choices=lambda _w: [(la.name, la) for la in _images(layers)],
                               tooltip="the current channel (Feenstra) or the lock-in Y "
                                       "channel (R/θ)")
        self.broadening = FloatSpinBox(label="ΔV (mV)", value=0.0, min=0.0, max=1e4,
                                       tooltip="Feenstra's broadening of I/V (0: none)")
        self.run = PushButton(text="Run")
        self.result = Label(value="")
        self.result.native.setWordWrap(True)
        self.extend([self.layer, self.action, self.order, self.mirror, self.direction,
                     self.angle, self.model, self.second, self.broadening, self.run,
                     self.result])
        self.figure = Figure(figsize=(4, 3.5), constrained_layout=True)
        self.axes = self.figure.subplots(1, 1)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(280)
        self.native.layout().addWidget(self.canvas)
        scroll_body(self)
        self.data: dict = {}
        self.run.changed.connect(self.compute)
        self.layer.changed.connect(self._update_directions)
        self.reset_choices()

    def reset_choices(self, *_args) -> None:
        super().reset_choices()
        if self.layer.value is None:
            choices = [c for c in self.layer.choices if c is not None]
            if choices:
                self.layer.value = choices[0]
        self._update_directions()

    def lattice(self):
        """The chosen layer's lattice, else the first layer's that has one."""
        chosen = self.layer.value
        candidates = ([chosen] if chosen is not None else []) + list(self._viewer.layers)
        for la in candidates:
            lat = act.lattice_of(la)
            if lat is not None:
                return lat
        return None

    def _update_directions(self, *_args) -> None:
        options = act.directions(self.lattice())
        if list(self.direction.choices) != options:
            self.direction.choices = options
            self.direction.value = options[0]

    def compute(self, *_args) -> dict:
        """Run the chosen action on the chosen layer; show and return :attr:`data`."""
        layer, action = self.layer.value, self.action.value
        if layer is None:
            self.result.value = "choose a layer"
            return self.data
        try:
            text = self._compute(layer, action)
        except ValueError as exc:
            text = f"{action}: {exc}"
        self.result.value = text
        self.data["text"] = text
        return self.data

    def _compute(self, layer: Layer, action: str) -> str:
        from .layers import apply_layers
        from .qspace import show_q_layers

        if action == "Lattice vectors":
            lat, tuples, text = act.lattice_action(layer)
            self.data["lattice"] = lat
            apply_layers(self._viewer, tuples)
            self._update_directions()
            return text
        if action == "Crop to rectangle":
            from napari.layers import Shapes

            drawn = [la for la in self._viewer.layers if isinstance(la, Shapes)]
            if not drawn:
                raise ValueError("add a Shapes layer and draw a rectangle on the map")
            tuples, text = act.crop_action(layer, drawn[-1])
            self.data["layers"] = apply_layers(self._viewer, tuples)
            return text
        if action == "Align to lattice":
            lat = self.lattice()
            if lat is None:
                raise ValueError("no lattice yet: run Lattice vectors on a map first")
            tuples, text = act.align_action(layer, lat)
            self.data["layers"] = apply_layers(self._viewer, tuples)
            return text
        if action == "q-space (symmetrised)":
            tuples, text = act.qspace_action(layer, int(self.order.value),
                                             bool(self.mirror.value), self.lattice())
            self.data["qspace"] = show_q_layers(self._viewer, tuples)
            return text
        if action in ("Feenstra (dI/dV)/(I/V)", "Lock-in R/θ"):
            other = self.second.value
            if other is None or other is layer:
                raise ValueError("choose the other channel under 'current / Y'")
            tuples, text = (act.feenstra_action(layer, other, self.broadening.value)
                            if action.startswith("Feenstra") else
                            act.lockin_action(layer, other))
            self.data["layers"] = apply_layers(self._viewer, tuples)
            return text
        eq = act.eq_action(layer, self.direction.value, self.angle.value, self.lattice())
        self.data["eq"] = eq
        fit = q = None
        text = f"E(q) of {eq['label']}: {eq['cut'].shape[1]} q samples"
        if action == "Dispersion fit":
            use_eq = None if act.is_kernel(layer) else eq
            fit, _, q, text = act.dispersion_action(layer, self.model.value, use_eq)
            self.data["fit"] = fit
        self._draw(eq, fit, q)
        return text

    def _draw(self, eq: dict, fit, q_points) -> None:
        ax = self.axes
        ax.clear()
        q, energies, cut = eq["q"], eq["energies"], eq["cut"]
        peak = cut[:, q > q[-1] * 0.05].max(axis=1, keepdims=True)
        shown = cut / np.where(peak > 0, peak, 1.0)  # per energy: a bias sweep spans decades
        if len(energies) > 1:
            ax.pcolormesh(q, energies, shown, shading="nearest", cmap="magma",
                          vmin=0, vmax=1)
            points = eq["ring"] if q_points is None else q_points
            ax.plot(points, energies, "o", ms=3, mfc="none", color="lime", label="q(E)")
            if fit is not None:
                qq = np.linspace(0, q[-1], 200)
                ee = fit.energy(qq)
                inside = (ee >= energies.min()) & (ee <= energies.max())
                ax.plot(qq[inside], ee[inside], color="cyan", lw=1.2, label=fit.model)
            ax.set_ylabel("E (meV)")
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.plot(q, shown[0])
        ring = eq["ring"] if q_points is None else q_points
        if np.isfinite(ring).any():  # zoom on the signal, not out to Nyquist
            ax.set_xlim(0.0, min(float(q[-1]), 2.5 * float(np.nanmax(ring))))
        ax.set_xlabel("q (Å⁻¹)")
        ax.set_title(eq["label"], fontsize=9)
        self.canvas.draw_idle()
