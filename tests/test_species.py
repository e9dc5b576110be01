"""Several defect species in one map (extraction/species.py, extract(n_types=...))."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi import extract, simulate
from napari_qpi.evaluation.species import MixedCase, score_species
from napari_qpi.extraction.operator import TypesOperator
from napari_qpi.physics.bands import default_band
from napari_qpi.physics.kernels import Defect, default_defect


def two_species(seed=4, snr=20.0):
    """A point defect and a dimer of the opposite potential, one band, one energy."""
    band = default_band("square")
    v = 3 * band.energy_scale()
    sim = simulate(band=band, energies=[0.0], defects=[
        default_defect(band, v), Defect(-v, ((0.0, 0.0), (0.0, 1.0)), (1.0, 1.0))],
        n_scatterers=30, snr=snr, seed=seed)
    return MixedCase(seed, "square", snr, sim.observation[0], sim.kernels[:, 0],
                     sim.positions, sim.types)


def test_types_operator_is_the_adjoint_pair_and_its_step_bound_holds():
    rng = np.random.default_rng(0)
    op = TypesOperator(rng.standard_normal((2, 3, 5, 5)), (20, 24))
    x, y = rng.standard_normal((2, 20, 24)), rng.standard_normal((3, 20, 24))
    assert np.isclose((op.forward(x) * y).sum(), (x * op.adjoint(y)).sum())
    k = rng.standard_normal((2, 3, 5, 5))
    assert np.isclose((op.kernel_forward(k, x) * y).sum(),
                      (k * op.kernel_adjoint(y, x)).sum())
    v = rng.standard_normal((2, 20, 24))
    for _ in range(50):  # power iteration: ‖A‖² ≤ the bound FISTA steps by
        v = op.adjoint(op.forward(v))
        norm = np.linalg.norm(v)
        v /= norm
    assert norm <= op.lipschitz() * (1 + 1e-9)
    # two types summed: the sum of each type's own convolution
    one = TypesOperator(op.kernel[:1], (20, 24)).forward(x[:1])
    two = TypesOperator(op.kernel[1:], (20, 24)).forward(x[1:])
    np.testing.assert_allclose(op.forward(x), one + two, atol=1e-9)


def test_scores_of_a_perfect_fit():
    case = two_species()
    acts = np.zeros((2, *case.observation.shape))
    acts[case.types, case.positions[:, 0], case.positions[:, 1]] = 1.0
    s = score_species(case, case.kernels[::-1], acts[::-1])  # species in either order
    assert np.allclose(s["tail_per_species"], 1.0) and s["found"] == 1.0
    assert s["assigned"] == 1.0


@pytest.mark.slow  # 6 s or more: the full suite runs it, the fast lane not
def test_two_species_are_separated_where_one_kernel_blends_them():
    case = two_species()
    one = extract(case.observation, method="two-stage")
    two = extract(case.observation, method="two-stage", n_types=2)
    assert two.kernel.shape[0] == 2 and two.activation.shape == (2, *case.observation.shape)
    assert two.info["n_types"] == 2 and len(two.info["scatterers_per_type"]) == 2
    s_one = score_species(case, one.kernel[None], one.activation[None])
    s_two = score_species(case, two.kernel, two.activation)
    # each species' kernel is found, and better than the blend matches it
    assert min(s_two["tail_per_species"]) > 0.7, s_two
    assert np.mean(s_two["tail_per_species"]) > np.mean(s_one["tail_per_species"]) + 0.1
    assert s_two["found"] >= 0.8 and s_two["assigned"] >= 0.9, s_two
    # two species predict held-out pixels better than one
    assert two.info["types_cv"][2] < two.info["types_cv"][1]
    assert two.info["relative_residual"] < one.info["relative_residual"]


@pytest.mark.parametrize("bad", [0, 5, 1.5, "two", True, None])
def test_n_types_must_be_a_count_or_auto(bad):
    with pytest.raises(ValueError, match="n_types"):
        extract(np.random.default_rng(0).standard_normal((64, 64)), method="power",
                n_types=bad)


def test_species_are_found_blind_not_from_positions():
    obs = np.random.default_rng(0).standard_normal((64, 64))
    with pytest.raises(ValueError, match="positions"):
        extract(obs, method="power", n_types=2, positions=[[10, 10]])


@pytest.mark.slow
def test_auto_keeps_one_species_on_a_one_species_map_and_changes_nothing():
    sim = simulate(family="square", energies=[0.0], n_scatterers=25, snr=10, seed=2)
    one = extract(sim.observation[0], method="two-stage")
    auto = extract(sim.observation[0], method="two-stage", n_types="auto")
    # two species predicted the held-out blocks no better, so no more were tried
    assert auto.info["n_types"] == 1 and set(auto.info["types_cv"]) == {1, 2}
    np.testing.assert_array_equal(auto.kernel, one.kernel)
    np.testing.assert_array_equal(auto.activation, one.activation)


@pytest.mark.slow
def test_auto_finds_two_species_where_there_are_two():
    case = two_species()
    res = extract(case.observation, method="two-stage", n_types="auto")
    assert res.info["n_types"] == 2, res.info["types_cv"]


def test_like_signed_mixed_draws_pair_alike_patterns_the_default_opposite_ones():
    """The harder own draws for the species rules: a like-signed dimer beside the point
    defect gives patterns that correlate positively; the default draws pair opposite
    signs (mostly anti-correlated) and stay what they were."""
    from napari_qpi.evaluation.species import make_mixed_cases

    def corr(case):
        a, b = (k.ravel() / np.linalg.norm(k) for k in case.kernels)
        return float(a @ b)

    like = make_mixed_cases(6, same_sign=True)
    default = make_mixed_cases(6)
    assert all(corr(c) > 0.3 for c in like)
    assert np.median([corr(c) for c in default]) < 0
    for c in like:  # two species, both present
        assert set(np.unique(c.types)) == {0, 1}
