"""QPI physics: bands, T-matrix kernels, synthetic observations (numpy/scipy only)."""

from .bands import FAMILIES, SYMMETRY_ORDER, Band, default_band
from .classes import CLASSES, HELD_OUT, SEEN, ClassSpec, sample_class, sample_classes
from .kernels import Defect, GreensFunction, crop_centered, default_defect, kernel_grid
from .noise import add_background, add_noise, add_streaks
from .sampling import SEEN_FAMILIES, SPLITS, UNSEEN_FAMILIES, KernelSpec, sample_spec, sample_specs
from .simulation import Simulation, simulate

__all__ = [
    "FAMILIES", "SYMMETRY_ORDER", "Band", "default_band", "Defect", "GreensFunction",
    "crop_centered", "default_defect", "kernel_grid", "add_background", "add_noise",
    "add_streaks", "SEEN_FAMILIES", "SPLITS", "UNSEEN_FAMILIES", "KernelSpec",
    "sample_spec", "sample_specs", "Simulation", "simulate", "CLASSES", "HELD_OUT", "SEEN",
    "ClassSpec", "sample_class", "sample_classes",
]
