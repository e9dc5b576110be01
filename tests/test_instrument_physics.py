"""The simulated instrument: its kernel and positions stay the truth of what it shows."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi.physics.instrument import through_instrument
from napari_qpi.physics.simulation import simulate


def one_scatterer(shape=(64, 64)):
    return simulate(family="square", shape=shape, kernel_size=63, energies=[0.0],
                    positions=np.array([[30, 33]]), snr=np.inf, seed=0)


def placed(kernel, pos, shape):
    """The kernel with its centre on ``pos``, cut to ``shape``."""
    k = kernel.shape[-1]
    out = np.zeros((shape[0] + 2 * k, shape[1] + 2 * k))
    r, c = pos[0] + k, pos[1] + k
    out[r - k // 2:r + k // 2 + 1, c - k // 2:c + k // 2 + 1] = kernel
    return out[k:-k, k:-k]


@pytest.mark.parametrize("artefacts, phase", [((), 0.0), (("oversampled",), 0.0),
                                              (("oversampled",), 0.5), (("lockin",), 0.0),
                                              (("oversampled", "lockin"), 0.5)])
def test_kernel_and_positions_describe_the_map(artefacts, phase):
    sim = one_scatterer()
    m = through_instrument(sim.observation, sim.kernel, sim.positions, artefacts, rng=1,
                           phase=phase)
    assert m.kernel.shape[-1] % 2 == 1
    obs = m.observation[0] - m.observation[0].mean()
    model = placed(m.kernel[0], m.positions[0], obs.shape)
    model = model - model.mean()
    inner = (slice(8, -8), slice(8, -8))  # the map's own edges are filtered differently
    corr = np.corrcoef(obs[inner].ravel(), model[inner].ravel())[0, 1]
    assert corr > 0.99, corr
    if "oversampled" in artefacts:
        assert m.observation.shape[-1] == 128 and tuple(m.positions[0]) == (60, 66)
        # the scatterer's pattern is centred half a pixel off with phase 0.5: its
        # kernel's energy centroid is there too
        e = m.kernel[0].astype(float) ** 2
        c = m.kernel.shape[-1] // 2
        r = np.arange(e.shape[0]) - c
        hi = c + 4 + int(phase > 0)  # a window symmetric about c + phase
        core = e[c - 3:hi, c - 3:hi]
        cy = (core.sum(1) * r[c - 3:hi]).sum() / core.sum()
        assert abs(cy - phase) < 0.15, cy


def test_unknown_artefact_is_refused():
    sim = one_scatterer()
    with pytest.raises(ValueError, match="unknown"):
        through_instrument(sim.observation, sim.kernel, sim.positions, ["wobble"])


def test_own_instrument_stacks_are_dispersing_grids_through_the_lockin():
    from napari_qpi.evaluation.instrument import make_instrument_stacks

    cases = make_instrument_stacks(2, size=96)
    again = make_instrument_stacks(2, size=96)
    for c, d in zip(cases, again):
        assert c.observation.shape == (8, 96, 96) and c.kernel.shape[0] == 8
        assert {"lockin", "lattice"} <= set(c.artefacts) and len(c.artefacts) >= 3
        np.testing.assert_array_equal(c.observation, d.observation)  # seeded
        # one band at eight energies: the pattern's wavelength changes along the stack
        first, last = (k.ravel() / np.linalg.norm(k) for k in c.kernel[[0, -1]])
        assert abs(first @ last) < 0.95


def test_class_instrument_draws_are_seeded_multi_site_maps_their_truth_explains():
    from napari_qpi.evaluation.instrument import make_class_instrument_cases
    from napari_qpi.extraction.operator import ConvOperator

    cases = make_class_instrument_cases(6, size=96)
    again = make_class_instrument_cases(6, size=96)
    assert {c.defect for c in cases} - {"point"}  # multi-site defects among them
    for c, d in zip(cases, again):
        np.testing.assert_array_equal(c.observation, d.observation)  # seeded
        assert c.observation.shape == (96, 96) and c.kernel.shape == (65, 65)
        assert 1 <= len(c.artefacts) and "oversampled" not in c.artefacts
        # the true kernel at the true positions explains the map better than at a
        # layout moved by 17 px
        fits = []
        for shift in (0, 17):
            x = np.zeros((96, 96))
            p = (c.positions + shift) % 96
            x[p[:, 0], p[:, 1]] = 1.0
            model = ConvOperator(c.kernel[None], (96, 96)).forward(x)[0]
            fits.append(np.corrcoef(model.ravel(), c.observation.ravel())[0, 1])
        assert fits[0] > 0.2 and fits[0] > fits[1] + 0.1, (c.family, c.artefacts, fits)


def test_class_instrument_stacks_are_seeded_point_defect_grids_their_truth_explains():
    from napari_qpi.evaluation.instrument import make_class_instrument_stacks
    from napari_qpi.extraction.operator import ConvOperator

    cases = make_class_instrument_stacks(3, size=96)
    again = make_class_instrument_stacks(3, size=96)
    assert len({c.family for c in cases}) == 3 and {c.defect for c in cases} == {"point"}
    for c, d in zip(cases, again):
        np.testing.assert_array_equal(c.observation, d.observation)  # seeded
        assert c.observation.shape == (8, 96, 96) and c.kernel.shape == (8, 65, 65)
        assert {"lockin", "lattice"} <= set(c.artefacts) and "oversampled" not in c.artefacts
        # the true kernels at the true positions explain every slice better than at a
        # layout moved by 17 px
        fits = []
        for shift in (0, 17):
            x = np.zeros((96, 96))
            p = (c.positions + shift) % 96
            x[p[:, 0], p[:, 1]] = 1.0
            model = ConvOperator(c.kernel, (96, 96)).forward(x)
            fits.append(np.corrcoef(model.ravel(), c.observation.ravel())[0, 1])
        assert fits[0] > 0.2 and fits[0] > fits[1] + 0.1, (c.family, c.artefacts, fits)
