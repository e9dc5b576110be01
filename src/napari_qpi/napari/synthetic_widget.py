"""The synthetic-data dock widget: :func:`napari_qpi.simulate` with a form.

Adds the observation (with its ground truth in ``metadata["ground_truth"]``), the
true kernel and the scatterer positions; generating again updates those layers.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FloatSpinBox,
    LineEdit,
    PushButton,
    SpinBox,
)

from .docking import scroll_body

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from ..physics.simulation import Simulation

#: Defect types 2, 3, 4 scale the first type's potential by these factors.
TYPE_FACTORS = (1.0, -0.6, 2.0, -1.4)


def format_params(params: dict) -> str:
    """``{"t": 100.0, "mu": -120.0}`` → ``"t=100, mu=-120"``."""
    return ", ".join(f"{k}={v:g}" for k, v in params.items())


def parse_params(text: str) -> dict[str, float]:
    """Inverse of :func:`format_params`; ValueError naming the bad entry."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"band parameters: cannot read {item!r}; write them as "
                             "'name=value, name=value'") from None
    return out


class SyntheticWidget(Container):
    """Simulate a QPI observation with known kernel and scatterers.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Injected by napari when the widget is docked.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        from ..physics.bands import FAMILIES
        from ..physics.noise import NOISE_KINDS
        from ..physics.simulation import MODELS, simulate

        d = {k: p.default for k, p in inspect.signature(simulate).parameters.items()}
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.family = ComboBox(label="band family", choices=FAMILIES, value=d["family"],
                               tooltip="band structure: free electron (isotropic), "
                                       "square (C4), rectangular (C2), triangular (C6), "
                                       "triangular_c3 (C3), tilted (C1)")
        self.band_params = LineEdit(label="band parameters",
                                    tooltip="meV (m_eff in electron masses)")
        self.lattice_constant = FloatSpinBox(label="lattice constant (Å)", value=3.6,
                                             min=0.5, max=50, step=0.1,
                                             tooltip="a, Å (unused by the free electron)")
        self.rotation = FloatSpinBox(label="rotation (°)", value=0.0, min=-180, max=180,
                                     tooltip="in-plane rotation of the lattice")
        self.size = SpinBox(label="map size (px)", value=d["shape"][0], min=16, max=512, step=16,
                            tooltip="side of the square map")
        self.pixel_size = FloatSpinBox(label="pixel size (Å)", value=2.0, min=0.05,
                                       max=20.0, step=0.05,
                                       tooltip="Å per pixel (the family's default filled in)")
        self.kernel_size = SpinBox(label="kernel size (px)", value=d["kernel_size"], min=3, max=257,
                                   step=2, tooltip="odd window of the ground-truth kernel")
        self.n_energies = SpinBox(label="energies", value=8, min=1, max=200,
                                  tooltip="number of energies, evenly spaced")
        self.e_min = FloatSpinBox(label="from (meV)", min=-5000, max=5000, step=1.0,
                                  tooltip="first energy (the family's default range)")
        self.e_max = FloatSpinBox(label="to (meV)", min=-5000, max=5000, step=1.0,
                                  tooltip="last energy")
        self.n_scatterers = SpinBox(label="scatterers", value=d["n_scatterers"], min=1, max=2000,
                                    tooltip="point defects at random pixels")
        self.n_types = SpinBox(label="defect types", value=1, min=1, max=len(TYPE_FACTORS),
                               tooltip="types 2–4 scale the potential by "
                                       + ", ".join(f"{f:g}" for f in TYPE_FACTORS[1:]))
        self.model = ComboBox(label="scattering", choices=MODELS, value=d["model"],
                              tooltip="linear: sum of single-defect kernels; tmatrix: "
                                      "multiple scattering between defects")
        self.noise = ComboBox(label="noise", choices=NOISE_KINDS, value=d["noise"],
                              tooltip="white or 1/f (pink) noise")
        self.snr = FloatSpinBox(label="SNR (0 = none)", value=d["snr"], min=0.0, max=1e6,
                                tooltip="var(signal) / var(noise) per energy")
        self.streaks = FloatSpinBox(label="scan streaks", value=d["streaks"], min=0, max=10,
                                    step=0.1, tooltip="scan-line offsets, relative to "
                                                      "the signal")
        self.background = FloatSpinBox(label="background", value=d["background"], min=0, max=10,
                                       step=0.1, tooltip="smooth background, relative to "
                                                         "the signal")
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1,
                            tooltip="same seed, same map")
        self.generate_button = PushButton(text="Generate",
                                          tooltip="simulate in the background and add "
                                                  "observation, true kernel, scatterers")
        self.extend([self.family, self.band_params, self.lattice_constant, self.rotation,
                     self.size, self.pixel_size, self.kernel_size, self.n_energies,
                     self.e_min, self.e_max, self.n_scatterers, self.n_types, self.model,
                     self.noise, self.snr, self.streaks, self.background, self.seed,
                     self.generate_button])
        scroll_body(self)  # the dock scrolls: the window stays on a laptop screen
        self.family.changed.connect(self._family_defaults)
        self.generate_button.changed.connect(self.generate)
        self.worker = None
        self._progress = None
        self.last: Simulation | None = None
        self._family_defaults()

    def _family_defaults(self, *_args) -> None:
        """Fill band parameters, lattice, pixel size and energies for the family."""
        from ..physics.bands import default_band
        from ..physics.simulation import default_energies, default_pixel_size

        band = default_band(self.family.value)
        self.band_params.value = format_params(dict(band.params))
        self.lattice_constant.value = band.lattice_constant
        self.lattice_constant.enabled = band.family != "free_electron"
        self.rotation.value = np.rad2deg(band.rotation)
        self.pixel_size.value = default_pixel_size(band)
        energies = default_energies(band)
        self.e_min.value, self.e_max.value = float(energies[0]), float(energies[-1])

    def simulation(self, run: bool = True):
        """Run :func:`napari_qpi.simulate` with the form's values.

        With ``run=False``, check the form and return the call, to run elsewhere.
        """
        from functools import partial

        from ..physics.bands import Band
        from ..physics.kernels import Defect, default_defect
        from ..physics.simulation import simulate

        band = Band(self.family.value, parse_params(self.band_params.value),
                    self.lattice_constant.value, float(np.deg2rad(self.rotation.value)))
        first = default_defect(band, 3.0 * band.energy_scale())
        defects = [Defect(first.strength * f, first.offsets, first.weights)
                   for f in TYPE_FACTORS[: self.n_types.value]]
        call = partial(
            simulate, band=band, shape=(self.size.value, self.size.value),
            energies=np.linspace(self.e_min.value, self.e_max.value, self.n_energies.value),
            n_scatterers=self.n_scatterers.value, defects=defects,
            kernel_size=self.kernel_size.value, pixel_size=self.pixel_size.value,
            model=self.model.value, snr=self.snr.value or np.inf, noise=self.noise.value,
            streaks=self.streaks.value, background=self.background.value,
            seed=self.seed.value)
        return call() if run else call

    def generate(self, *_args):
        """Simulate in a worker thread, then add (or update) the three layers.

        Form errors become notifications (and None is returned); otherwise the started
        worker is returned. A T-matrix map of many scatterers takes seconds, during
        which the viewer stays responsive behind an indeterminate progress bar.
        """
        from napari.qt.threading import thread_worker
        from napari.utils import progress
        from napari.utils.notifications import show_error

        if self.worker is not None:
            return None
        try:
            make = self.simulation(run=False)
        except ValueError as exc:
            show_error(f"Synthetic data: {exc}")
            return None
        self._progress = progress(total=0, desc=f"simulating ({self.model.value}, "
                                                f"{self.n_scatterers.value} scatterers)")
        worker = thread_worker(_job, start_thread=False)(make)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.generate_button.enabled = False
        worker.start()
        return worker

    def _on_returned(self, result) -> None:
        from napari.utils.notifications import show_error

        from .layers import OBSERVATION_NAME, apply_layers, synthetic_layers
        from .results import remove_stale

        if isinstance(result, Exception):
            show_error(f"Synthetic data: {result}")
            return
        self.last = result
        # the outputs of the map this one overwrites describe data that is gone
        remove_stale(self._viewer, OBSERVATION_NAME, keep=set())
        layers = apply_layers(self._viewer, synthetic_layers(result))
        self._viewer.layers.selection.active = layers[0]

    def _on_finished(self) -> None:
        self.worker = None
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        try:
            self.generate_button.enabled = True
        except RuntimeError:  # the dock was deleted with the viewer
            pass


def _job(make):
    """Run the simulation; a ValueError of the library comes back as the result."""
    try:
        return make()
    except ValueError as exc:
        return exc
