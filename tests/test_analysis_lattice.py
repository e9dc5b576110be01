"""Lattice vectors read from simulated lattice corrugations of known period and angle."""

import numpy as np
import pytest

from napari_qpi.analysis import Lattice, align_to_lattice, high_symmetry_points, measure_lattice
from napari_qpi.analysis.align import rotate_map


def _corrugation(n, period, angle_deg, kind, noise=0.3, seed=0):
    """cos waves on the Bragg vectors of a lattice with constant ``period`` (px), its
    first real-space vector at ``angle_deg`` (counter-clockwise on screen)."""
    yy, xx = np.mgrid[:n, :n].astype(float)
    a1 = period * np.array([-np.sin(np.deg2rad(angle_deg)), np.cos(np.deg2rad(angle_deg))])
    turn = 90.0 if kind == "square" else 120.0
    t = np.deg2rad(angle_deg + turn)
    a2 = period * np.array([-np.sin(t), np.cos(t)])
    b = 2 * np.pi * np.linalg.inv(np.stack([a1, a2])).T
    vecs = [b[0], b[1]] + ([b[0] - b[1]] if kind == "hexagonal" else [])  # |b1 − b2| = |b|
    image = sum(np.cos(v[0] * yy + v[1] * xx) for v in vecs)
    return image + noise * np.random.default_rng(seed).normal(size=image.shape)


@pytest.mark.parametrize(("kind", "period", "angle"),
                         [("square", 6.3, 17.0), ("hexagonal", 5.3, 10.0),
                          ("hexagonal", 4.1, -23.0)])
def test_lattice_vectors_recovered_within_a_tenth_of_a_percent(kind, period, angle):
    pixel_size = 0.8
    lat = measure_lattice(_corrugation(128, period, angle, kind), pixel_size=pixel_size)
    assert lat is not None and lat.kind == kind and lat.unit == "Å"
    # the FFT grid alone (no sub-pixel refinement) is 0.3–0.8 % off on these maps
    np.testing.assert_allclose(lat.constants, period * pixel_size, rtol=1e-3)
    # a1, a2 lie on the lattice's directions modulo its rotation group
    step = 90.0 if kind == "square" else 60.0
    off = np.mod(lat.angles - angle + step / 2, step) - step / 2
    np.testing.assert_allclose(off, 0.0, atol=0.1)
    gamma = lat.gamma if kind == "square" else min(lat.gamma, 180 - lat.gamma)
    np.testing.assert_allclose(gamma, 90.0 if kind == "square" else 60.0, atol=0.5)
    # a_i · b_j = 2π δ_ij and |b| = 2π / (a sin γ)
    np.testing.assert_allclose(lat.real @ lat.reciprocal.T, 2 * np.pi * np.eye(2), atol=1e-9)


def test_frame_angle_rotates_every_angle_and_nothing_else():
    image = _corrugation(96, 5.0, 30.0, "square")
    plain = measure_lattice(image, pixel_size=1.0)
    turned = measure_lattice(image, pixel_size=1.0, frame_angle=12.5)
    np.testing.assert_allclose(turned.angles, np.mod(plain.angles + 12.5, 360))
    np.testing.assert_allclose(turned.constants, plain.constants)


def test_pixel_units_without_pixel_size_and_none_without_a_lattice():
    lat = measure_lattice(_corrugation(64, 4.0, 0.0, "square", noise=0.0))
    assert lat.unit == "px"
    np.testing.assert_allclose(lat.constants, 4.0, rtol=1e-3)
    noise = np.random.default_rng(1).normal(size=(64, 64))
    assert measure_lattice(noise) is None


def test_high_symmetry_points_of_square_and_hexagonal_zones():
    square = Lattice(reciprocal=np.array([[0.0, 1.0], [-1.0, 0.0]]),
                     real=2 * np.pi * np.array([[0.0, 1.0], [-1.0, 0.0]]))
    pts = high_symmetry_points(square)
    np.testing.assert_allclose(np.linalg.norm(pts["X"]), 0.5)
    np.testing.assert_allclose(np.linalg.norm(pts["M"]), np.sqrt(0.5))
    c, s = np.cos(np.pi / 3), np.sin(np.pi / 3)
    b = np.array([[0.0, 1.0], [-s, c]])
    hexagonal = Lattice(reciprocal=b, real=2 * np.pi * np.linalg.inv(b).T)
    assert hexagonal.kind == "hexagonal"
    pts = high_symmetry_points(hexagonal)
    np.testing.assert_allclose(np.linalg.norm(pts["M"]), 0.5)
    np.testing.assert_allclose(np.linalg.norm(pts["K"]), 1 / np.sqrt(3))  # the corner


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="pixel_size"):
        measure_lattice(np.zeros((32, 32)), pixel_size=-1.0)
    with pytest.raises(ValueError, match="data"):
        measure_lattice(np.zeros(32))


@pytest.mark.parametrize("seed", [0, 1, 4, 6])  # 0, 1 square; 4, 6 hexagonal
def test_lattice_of_a_simulated_instrument_map(seed):
    """The instrument simulator's corrugation under a QPI map with noise: Bragg lengths
    within 0.5 % of truth (the issue asks for 2 %), directions within 0.3°."""
    from napari_qpi import simulate
    from napari_qpi.physics.instrument import through_instrument

    sim = simulate(family="free_electron", shape=(96, 96), kernel_size=33,
                   energies=[0.0, 20.0], n_scatterers=12, snr=10.0, seed=seed)
    inst = through_instrument(sim.observation, sim.kernel, sim.positions, ["lattice"],
                              rng=seed)
    # the simulator's draws, in its order: period (px), angle (rad), directions
    rng = np.random.default_rng(seed)
    period, angle, dirs = rng.uniform(2.2, 4.0), rng.uniform(0, np.pi), int(rng.integers(2, 4))
    lat = measure_lattice(inst.observation, pixel_size=sim.pixel_size)
    assert lat is not None and lat.kind == ("square" if dirs == 2 else "hexagonal")
    np.testing.assert_allclose(lat.bragg_lengths, 2 * np.pi / (period * sim.pixel_size),
                               rtol=5e-3)
    # a wave along (sin φ, cos φ) in (y, x) points at −φ on screen; each is ± itself
    truth = np.mod(-np.degrees(angle + np.arange(dirs) * np.pi / dirs), 180.0)
    for found in np.mod(lat.bragg_angles, 180.0):
        gap = np.abs(np.mod(truth - found + 90.0, 180.0) - 90.0)
        assert gap.min() < 0.3, (found, truth)


@pytest.mark.parametrize(("kind", "angle"), [("square", 17.0), ("hexagonal", -23.0)])
def test_aligned_map_has_a_lattice_vector_along_x(kind, angle):
    image = _corrugation(128, 5.5, angle, kind, noise=0.1)
    aligned = align_to_lattice(np.stack([image, 2 * image]), measure_lattice(image))
    lat = measure_lattice(aligned)
    step = 90.0 if kind == "square" else 60.0
    off = np.mod(lat.angles + step / 2, step) - step / 2
    np.testing.assert_allclose(off, 0.0, atol=0.1)  # was 17° / 23° off
    np.testing.assert_allclose(lat.constants, 5.5, rtol=1e-3)  # and not stretched


def test_rotate_map_turns_counter_clockwise_on_screen():
    image = np.zeros((21, 21))
    image[10, 15] = 1.0  # 5 px along +x
    turned = rotate_map(image, 90.0, order=0, fill=0.0)
    assert turned[5, 10] == 1.0  # now 5 px up the screen (+y is up: rows decrease)
    with pytest.raises(ValueError, match="angle"):
        rotate_map(image, float("nan"))
