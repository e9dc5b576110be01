"""Symmetrisation against patterns of known symmetry."""

import numpy as np
import pytest

from napari_qpi.analysis import symmetrize
from napari_qpi.analysis.symmetry import symmetry_operations


def _polar(n):
    yy, xx = np.indices((n, n), dtype=float) - n // 2
    return np.hypot(yy, xx), np.arctan2(-yy, xx)  # θ counter-clockwise on screen


def _pattern(n, order, phase=0.0):
    r, t = _polar(n)
    return np.exp(-((r - n / 5) ** 2) / 20) * (1 + 0.8 * np.cos(order * (t - phase))) \
        + np.exp(-r**2 / 8)


@pytest.mark.parametrize("n", [33, 32])
def test_c4_pattern_is_unchanged_and_a_c2_perturbation_removed(n):
    c4 = _pattern(n, 4, phase=0.3)
    r, t = _polar(n)
    c2_only = 0.5 * np.exp(-((r - n / 4) ** 2) / 10) * np.cos(2 * t) * (r > 0)  # C4 mean 0
    out = symmetrize(c4 + c2_only, 4)
    inner = r < n // 2 - 1  # an even side's unpaired edge row is filled
    np.testing.assert_allclose(out[inner], c4[inner], atol=1e-9)
    # and the C2 term was real: C2 keeps it
    np.testing.assert_allclose(symmetrize(c4 + c2_only, 2)[inner], (c4 + c2_only)[inner],
                               atol=1e-9)


def test_c6_removes_c2_and_c4_terms_and_leaves_no_corners():
    n = 65
    r, t = _polar(n)
    c6 = _pattern(n, 6)
    noise = 0.4 * np.exp(-((r - 15) ** 2) / 10) * (np.cos(2 * t) + np.cos(4 * t + 1))
    out = symmetrize(c6 + noise, 6, fill=-1.0)
    inside = r <= n // 2 - 1
    # bilinear sampling of a smooth pattern: 2 % of its peak
    assert np.abs(out - c6)[inside].max() < 0.02 * c6.max()
    assert np.abs(noise[inside]).max() > 0.3  # the removed terms were large
    # the corners beyond the inscribed circle: the fill, never a half-averaged value
    assert np.all(out[r > n // 2 + 1] == -1.0)
    rotated = symmetrize(out, 6, fill=-1.0)  # C6-symmetric already: a fixed point
    deep = r <= n // 2 - 2  # bilinear reads of the rim would mix in the fill
    assert np.abs(rotated - out)[deep].max() < 0.02 * c6.max()  # bilinear smoothing


def test_mirror_about_the_lattice_axis():
    n = 41
    r, t = _polar(n)
    axis = 20.0
    # symmetric about the line at 20° plus a term odd about it
    even = np.exp(-((r - 10) ** 2) / 8) * (1 + np.cos(2 * (t - np.deg2rad(axis))))
    odd = 0.5 * np.exp(-((r - 10) ** 2) / 8) * np.sin(t - np.deg2rad(axis))
    out = symmetrize(even + odd, 1, mirror=True, axis_angle=axis)
    inside = r <= n // 2 - 1
    assert np.abs(out - even)[inside].max() < 0.05 * even.max()
    assert np.abs(odd[inside]).max() > 0.4
    # about the wrong axis the odd term survives in part
    wrong = symmetrize(even + odd, 1, mirror=True, axis_angle=axis + 45)
    assert np.abs(wrong - even)[inside].max() > 0.2


def test_stack_is_symmetrised_slice_by_slice():
    stack = np.stack([_pattern(33, 4), 2 * _pattern(33, 4)])
    out = symmetrize(stack, 4)
    assert out.shape == stack.shape
    np.testing.assert_allclose(out[1], 2 * out[0])


def test_groups_have_the_right_size_and_close():
    for order in (1, 2, 3, 4, 6):
        ops = symmetry_operations(order, mirror=True, axis_angle=13.0)
        assert len(ops) == 2 * order
        for a in ops:
            for b in ops:
                assert min(np.abs(a @ b - c).max() for c in ops) < 1e-12


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="order"):
        symmetrize(np.ones((9, 9)), 5)
    with pytest.raises(ValueError, match="image"):
        symmetrize(np.ones(9), 4)
