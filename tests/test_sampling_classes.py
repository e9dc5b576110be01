"""The broad physics sampler: every class drawn, the point group each class claims, the
held-out classes absent from the seen stream, and the multi-orbital T-matrix against the
one-band simulator."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_qpi.models.data import bank_specs
from napari_qpi.physics.bands import Band
from napari_qpi.physics.classes import (
    CLASSES,
    HELD_OUT,
    SEEN,
    sample_class,
    sample_classes,
)
from napari_qpi.physics.kernels import Defect, GreensFunction, crop_centered, kernel_grid
from napari_qpi.physics.lattices import TightBinding
from napari_qpi.physics.tmatrix import defect_kernel

YY, XX = np.mgrid[-32:33, -32:33]
DISC = np.hypot(YY, XX) < 28


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[DISC] - a[DISC].mean(), b[DISC] - b[DISC].mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _rot(k: np.ndarray, degrees: float) -> np.ndarray:
    if degrees % 90 == 0:
        return np.rot90(k, int(degrees // 90))
    return ndimage.rotate(k, degrees, reshape=False, order=3)


def test_split_is_a_partition_with_the_named_held_out_classes():
    assert set(SEEN) | set(HELD_OUT) == set(CLASSES)
    assert not set(SEEN) & set(HELD_OUT)
    for name in ("honeycomb/normal/point", "square/d-wave/line", "triangular/normal/dimer",
                 "rectangular/s+-/point", "triangular/two-band/trimer"):
        assert name in HELD_OUT
    for name in ("square/normal/point", "triangular/normal/point", "free/two-band/dimer",
                 "square/s+-/plaquette", "oblique/normal/line"):
        assert name in SEEN


def test_every_class_is_drawn():
    drawn = {s.name for s in sample_classes("all", len(CLASSES), rng=3)}
    assert drawn == set(CLASSES)


def test_held_out_classes_never_in_the_seen_stream():
    names = [s.name for s in sample_classes("seen", 3 * len(SEEN), rng=11)]
    assert set(names) == set(SEEN)  # every seen class, and nothing else
    specs = bank_specs("seen", 300, seed=5, sampler="broad")
    for s in specs:
        assert getattr(s, "name", None) not in HELD_OUT


def test_sampling_is_seeded():
    a, b = sample_class("square/d-wave/dimer", 7), sample_class("square/d-wave/dimer", 7)
    np.testing.assert_array_equal(a.kernel(), b.kernel())


@pytest.mark.parametrize(("name", "symmetric", "broken"), [
    ("square/normal/point", [90], []),
    ("square/d-wave/point", [90], []),
    ("square/two-band/point", [90], []),
    ("rectangular/normal/point", [180], [90]),
    ("triangular/normal/point", [60], []),
    ("honeycomb/normal/point", [120], [60]),
    ("free/normal/point", [23, 90], []),
    ("square/normal/dimer", [], [90]),
])
def test_point_group_of_sampled_kernels_matches_the_class(name, symmetric, broken):
    rng = np.random.default_rng(21)
    lacks = {d: [] for d in broken}
    for _ in range(3):
        spec = sample_class(name, rng)
        k = spec.kernel()
        assert np.isfinite(k).all() and abs(np.linalg.norm(k) - 1) < 1e-9
        for deg in symmetric:
            assert _corr(k, _rot(k, deg)) > 0.98, (name, deg, spec.decay)
        for deg in broken:
            lacks[deg].append(_corr(k, _rot(k, deg)))
    for deg, cs in lacks.items():
        assert min(cs) < 0.97, (name, deg, cs)  # the rotation is not a symmetry


def test_sampled_scales_cover_compact_and_long_kernels():
    specs = sample_classes("all", 130, rng=2)
    decay = np.array([s.decay for s in specs])
    blur = np.array([s.blur for s in specs])
    assert decay.min() < 4 and decay.max() > 90
    assert blur.min() < 0.3 and blur.max() > 1.7
    assert {s.order for s in specs} >= {0, 1, 2, 3, 4, 6}


@pytest.mark.parametrize("offsets", [((0.0, 0.0),), ((0.0, 0.0), (0.0, 1.0))])
def test_tmatrix_matches_the_one_band_simulator(offsets):
    """The multi-orbital kernel on a one-band square model equals kernel_grid."""
    a, theta, t, tp = 4.0, 0.3, 100.0, -30.0
    band = Band("square", {"t": t, "tp": tp, "mu": 0.0}, a, theta)
    defect = Defect(250.0, offsets, (1.0, 0.6)[: len(offsets)])
    gf = GreensFunction(band, np.array([-60.0]), 128, 1.0, 12.0)
    legacy = kernel_grid(gf, defect, band, blur=0.8)[0]
    hop = tuple(((float(x), float(y)), (0, 0), w) for x, y, w in
                [(1, 0, t), (-1, 0, t), (0, 1, t), (0, -1, t),
                 (1, 1, tp), (1, -1, tp), (-1, 1, tp), (-1, -1, tp)])
    model = TightBinding("square", "normal", a, theta, np.eye(2), np.zeros((1, 2)), hop)
    sites, pots = defect.sites(band, 1.0)
    ours = defect_kernel(model, sites, pots, np.ones((len(pots), 1, 1)), -60.0, 12.0, 128,
                         blur=0.8)
    np.testing.assert_allclose(crop_centered(ours, 65), crop_centered(legacy, 65),
                               atol=1e-9 * np.abs(legacy).max())
