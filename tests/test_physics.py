"""The kernel simulator against known results: Friedel period, rotational symmetry of
each family, Born vs T-matrix, linear sum vs multi-impurity T-matrix."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_qpi.physics import (
    FAMILIES,
    SYMMETRY_ORDER,
    Band,
    GreensFunction,
    crop_centered,
    default_band,
    default_defect,
    kernel_grid,
)
from napari_qpi.physics.bands import HBAR2_2ME
from napari_qpi.physics.kernels import Defect
from napari_qpi.physics.scatter import linear, multi_impurity
from napari_qpi.physics.simulation import (
    decay_length,
    default_broadening,
    default_energies,
    default_pixel_size,
)

WINDOW = 65


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays."""
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised inner product (no mean removal: kernels oscillate about 0)."""
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


def _family_kernels(family: str, n_energies: int = 3, grid: int = 384) -> np.ndarray:
    """(E, 65, 65) kernels of a family's default band and defect on a generous grid."""
    band = default_band(family)
    energies = default_energies(band, n_energies)
    pixel_size = default_pixel_size(band)
    eta = default_broadening(band, energies, pixel_size)
    assert WINDOW // 2 + 3 * decay_length(band, energies, pixel_size, eta) <= grid
    gf = GreensFunction(band, energies, grid, pixel_size, eta)
    defect = default_defect(band, 3.0 * band.energy_scale())
    return crop_centered(kernel_grid(gf, defect, band, blur=1.0), WINDOW)


# ---------------------------------------------------------------- Friedel period


@pytest.mark.parametrize(("energy", "pixel_size"), [(0.0, 2.0), (30.0, 2.0), (-20.0, 3.0)])
def test_free_electron_period_is_pi_over_kf(energy: float, pixel_size: float) -> None:
    """The tail of the surface-state kernel oscillates with period π/k_F (2k_F rule)."""
    band = Band("free_electron", {"m_eff": 0.4, "band_bottom": 65.0})
    kf = np.sqrt((energy + 65.0) * 0.4 / HBAR2_2ME)  # Å⁻¹
    period = np.pi / (kf * pixel_size)  # px
    m = 512
    gf = GreensFunction(band, np.array([energy]), m, pixel_size, broadening=4.0)
    grid = kernel_grid(gf, default_defect(band, 100.0), band, blur=0.5)[0]
    profile = np.fft.fftshift(grid)[m // 2, m // 2:]  # along +x from the scatterer
    r = np.arange(profile.size, dtype=float)
    sel = (r > 2 * period) & (r < m // 4)
    r, y = r[sel], profile[sel]
    i = np.nonzero(np.sign(y[1:]) != np.sign(y[:-1]))[0]
    zeros = r[i] - y[i] * (r[i + 1] - r[i]) / (y[i + 1] - y[i])
    assert zeros.size >= 6
    measured = 2 * (zeros[-1] - zeros[0]) / (zeros.size - 1)
    assert measured == pytest.approx(period, rel=0.05)


# ---------------------------------------------------------------- symmetry


def _rotation_corr(kernel: np.ndarray, angle: float) -> float:
    """Correlation of a low-passed kernel with its rotation about the centre pixel,
    inside a disc that leaves out the core and the outer ring."""
    smooth = ndimage.gaussian_filter(kernel, 1.0)
    rotated = ndimage.rotate(smooth, angle, reshape=False, order=3)
    yy, xx = np.mgrid[:WINDOW, :WINDOW] - WINDOW // 2
    r = np.hypot(yy, xx)
    ring = (r > 4) & (r <= WINDOW // 2 - 5)
    return _cosine(smooth[ring], rotated[ring])


#: Rotations each family must *not* have, in degrees.
BROKEN = {
    "square": (45.0, 60.0),
    "rectangular": (90.0,),
    "triangular": (90.0,),
    "triangular_c3": (60.0, 180.0),
    "tilted": (180.0, 90.0),
}


@pytest.fixture(scope="module")
def kernels() -> dict[str, np.ndarray]:
    return {f: _family_kernels(f) for f in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_kernel_invariant_under_own_rotation(family: str, kernels) -> None:
    n = SYMMETRY_ORDER[family]
    angles = (37.0, 90.0, 151.0) if n == 0 else ((360.0 / n,) if n > 1 else ())
    for k in kernels[family]:
        for angle in angles:
            assert _rotation_corr(k, angle) > 0.99, (family, angle)


@pytest.mark.parametrize("family", [f for f in FAMILIES if SYMMETRY_ORDER[f] != 0])
def test_kernel_not_invariant_under_missing_rotation(family: str, kernels) -> None:
    for k in kernels[family]:
        for angle in BROKEN[family]:
            assert _rotation_corr(k, angle) < 0.95, (family, angle)


def test_point_defect_is_centrosymmetric_even_on_c3_band() -> None:
    """Why C3/C1 need a trimer/dimer: a point defect gives δρ(r) = δρ(−r)."""
    band = default_band("triangular_c3")
    gf = GreensFunction(band, np.array([0.0]), 192, default_pixel_size(band), 15.0)
    k = crop_centered(kernel_grid(gf, Defect(200.0), band), 41)[0]
    assert _cosine(k, k[::-1, ::-1]) > 0.9999
    trimer = crop_centered(kernel_grid(gf, default_defect(band, 200.0), band), 41)[0]
    assert _cosine(trimer, trimer[::-1, ::-1]) < 0.95


def test_band_rotation_rotates_kernel() -> None:
    base = default_band("rectangular")
    turned = Band(base.family, base.params, base.lattice_constant, np.pi / 2)
    ps = default_pixel_size(base)
    ks = []
    for band in (base, turned):
        gf = GreensFunction(band, np.array([0.0]), 192, ps, 10.0)
        ks.append(crop_centered(kernel_grid(gf, Defect(300.0), band), 41)[0])
    assert _cosine(np.rot90(ks[0]), ks[1]) > 0.999
    assert _cosine(ks[0], ks[1]) < 0.9


# ---------------------------------------------------------------- Born vs T-matrix


def _born_tmatrix(strength: float, energy: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    band = default_band("square")
    gf = GreensFunction(band, np.array([energy]), 192, default_pixel_size(band), 10.0)
    d = Defect(strength)
    born = crop_centered(kernel_grid(gf, d, band, born=True), 41)[0]
    tmat = crop_centered(kernel_grid(gf, d, band), 41)[0]
    return born, tmat


def test_born_matches_tmatrix_for_weak_defect() -> None:
    born, tmat = _born_tmatrix(1.0)
    assert _corr(born, tmat) > 0.999
    assert np.linalg.norm(tmat) / np.linalg.norm(born) == pytest.approx(1.0, abs=0.02)


def test_born_differs_from_tmatrix_near_resonance() -> None:
    band = default_band("square")
    gf = GreensFunction(band, np.array([0.0]), 192, default_pixel_size(band), 10.0)
    g00 = gf.site_value((0.0, 0.0))[0]
    v_res = 1.0 / g00.real  # 1 − V·Re G0(0) = 0: the impurity resonance
    born, tmat = _born_tmatrix(float(v_res))
    ratio = np.linalg.norm(tmat) / np.linalg.norm(born)
    assert ratio > 1.5 or ratio < 0.67 or _corr(born, tmat) < 0.9


def test_tmatrix_kernel_scales_linearly_in_born_limit() -> None:
    b1, t1 = _born_tmatrix(0.5)
    b2, t2 = _born_tmatrix(1.0)
    np.testing.assert_allclose(b2, 2 * b1, rtol=1e-9, atol=1e-12)
    assert np.linalg.norm(t2) / np.linalg.norm(t1) == pytest.approx(2.0, rel=0.02)


# ---------------------------------------------------------------- many scatterers


def _linear_vs_multi(strength: float, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    band = default_band("square")
    shape = (48, 48)
    gf = GreensFunction(band, np.array([-20.0, 20.0]), 128, default_pixel_size(band), 12.0)
    defects = [Defect(strength)]
    n = len(positions)
    args = (gf, band, defects, positions, np.zeros(n, int), np.ones(n), shape)
    lin, _ = linear(*args)
    return lin, multi_impurity(*args)


def test_linear_equals_multi_impurity_when_weak() -> None:
    pos = np.array([[10, 10], [12, 14], [30, 35], [40, 8]])
    lin, multi = _linear_vs_multi(2.0, pos)
    assert _corr(lin, multi) > 0.999
    assert np.linalg.norm(multi) / np.linalg.norm(lin) == pytest.approx(1.0, abs=0.02)


def test_single_scatterer_multi_impurity_is_its_kernel() -> None:
    """One strong scatterer alone: the sum of kernels is exact, up to the map edge."""
    for pos in ([24, 24], [0, 47]):
        lin, multi = _linear_vs_multi(600.0, np.array([pos]))
        assert np.linalg.norm(multi - lin) / np.linalg.norm(lin) < 1e-3


def test_linear_equals_multi_impurity_when_far_apart() -> None:
    pos = np.array([[5, 5], [40, 42], [5, 40]])
    lin, multi = _linear_vs_multi(600.0, pos)
    assert _corr(lin, multi) > 0.999
    assert np.linalg.norm(multi - lin) / np.linalg.norm(lin) < 0.03


def test_linear_differs_from_multi_impurity_when_strong_and_close() -> None:
    pos = np.array([[24, 24], [24, 25], [25, 24], [25, 25], [23, 24]])
    lin, multi = _linear_vs_multi(600.0, pos)
    rel = np.linalg.norm(multi - lin) / np.linalg.norm(lin)
    assert rel > 0.2
