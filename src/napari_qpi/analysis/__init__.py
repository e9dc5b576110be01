"""The analysis chain after extraction (stmpy/SIDAM-like), as plain numpy functions.

- :mod:`.lattice`: Bragg peaks as lattice vectors (:func:`measure_lattice`);
  :mod:`.align`: the map rotated onto the crystal's axes (:func:`align_to_lattice`);
- :mod:`.symmetry`: C2/C3/C4/C6 and mirror averages of q-space images (:func:`symmetrize`);
- :mod:`.linecut`: ``|FFT|`` stacks, Γ–X/Γ–M points, linecuts and radial profiles;
- :mod:`.dispersion`: q(E) from an E(q) cut or a kernel's Friedel oscillation, and a
  parabolic or linear band fitted to it (:func:`fit_dispersion`);
- :mod:`.spectroscopy`: Feenstra normalisation and lock-in R/θ.

numpy/scipy/skimage only: nothing here imports torch, napari or Qt, or the extraction.
"""

from __future__ import annotations

from .align import align_to_lattice
from .dispersion import (
    Dispersion,
    fit_dispersion,
    fit_kernel_dispersion,
    friedel_wavevectors,
    ring_wavevectors,
)
from .lattice import Lattice, measure_lattice
from .linecut import high_symmetry_points, linecut, magnitude_spectrum, q_steps, radial_profile
from .spectroscopy import feenstra, lockin_gain, lockin_polar
from .symmetry import symmetrize

__all__ = ["Dispersion", "Lattice", "align_to_lattice", "feenstra", "fit_dispersion",
           "fit_kernel_dispersion", "friedel_wavevectors", "high_symmetry_points",
           "linecut", "lockin_gain", "lockin_polar", "magnitude_spectrum", "measure_lattice",
           "q_steps", "radial_profile", "ring_wavevectors", "symmetrize"]
