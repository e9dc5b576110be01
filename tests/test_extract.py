"""extract(): shapes follow the input, bad input is refused clearly, the scale is physical."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qpi import QPIStack, extract, simulate
from napari_qpi.extraction import METHODS, iter_extract
from napari_qpi.extraction.metrics import kernel_similarity, tail_similarity
from napari_qpi.physics import default_band


@pytest.fixture(scope="module")
def sim():
    return simulate(seed=3, energies=[0.0, 20.0, 40.0], n_scatterers=25, snr=20.0)


@pytest.mark.parametrize("method", ["two-stage", "one-step", "wiener"])
def test_stack_in_stack_out(sim, method):
    res = extract(sim.observation, method=method, positions=sim.positions)
    e = sim.observation.shape[0]
    assert res.kernel.shape == (e, 65, 65)
    assert res.residual.shape == sim.observation.shape
    assert res.activation.shape == sim.observation.shape[1:]
    assert np.allclose(np.linalg.norm(res.kernel, axis=(1, 2)), 1, atol=1e-4)
    assert res.activation.min() >= 0
    # the residual is what the kernel did not explain: smaller than the data
    assert res.info["relative_residual"] < 0.9
    assert np.median(kernel_similarity(sim.kernel, res.kernel)) > 0.8


def test_map_in_map_out_blind(sim):
    res = extract(sim.observation[1], method="two-stage")
    assert res.kernel.shape == (65, 65)
    assert res.residual.shape == sim.observation.shape[1:]
    assert res.uncertainty.shape == (65, 65) and np.all(res.uncertainty >= 0)
    assert res.latent.shape == (1, 64)
    # sign convention: scatterer amplitudes come out positive, so the kernel's sign
    # matches the truth's (the simulation uses positive strengths)
    assert np.sum(res.kernel * sim.kernel[1]) > 0


def test_qpistack_input_and_deterministic(sim):
    stack = QPIStack(sim.observation, sim.energies, sim.pixel_size)
    a = extract(stack, method="two-stage")
    b = extract(stack, method="two-stage")
    assert np.array_equal(a.kernel, b.kernel)
    assert a.info["pixel_size"] == sim.pixel_size


@pytest.mark.parametrize(
    ("observation", "kwargs", "message"),
    [
        (np.full((64, 64), np.nan), {}, "NaN"),
        (np.ones(100), {}, "shape"),
        (np.ones((40, 40)), {"kernel_size": 65}, "smaller than the kernel window"),
        (np.ones((80, 80)), {"method": "magic"}, "unknown"),
        (np.ones((80, 80)), {"positions": [[5, 200]]}, "inside"),
        (np.ones((80, 80)), {"positions": [1, 2, 3]}, "(N, 2)"),
        (np.ones((80, 80)), {"method": "wiener"}, "needs positions"),
        (np.ones((80, 80)), {"kernel_size": 64}, "odd"),
    ],
)
def test_bad_input_raises_one_clear_error(observation, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        extract(observation, **kwargs)


def test_small_map_gets_a_window_that_fits():
    obs = simulate(shape=(40, 40), seed=1, energies=[10.0]).observation
    res = extract(obs, method="two-stage")
    assert res.kernel.shape == (1, 39, 39)


def test_progress_events_and_cancel(sim):
    gen = iter_extract(sim.observation, method="two-stage")
    first = next(gen)
    assert first.total >= 1 and 0 <= first.step <= first.total
    gen.close()  # cancelling between events raises nothing and stops the work


def test_every_registered_method_is_listed():
    for name in ("two-stage", "one-step", "wiener", "refine"):
        assert name in METHODS


def test_same_surface_at_two_pixel_sizes_gives_the_same_kernel_in_angstrom():
    band = default_band("free_electron")
    rng = np.random.default_rng(0)
    pos_a = rng.integers(0, 128, (20, 2)) * 2  # scatterers on the fine grid's even pixels
    fine = simulate(band=band, shape=(256, 256), energies=[10.0], positions=pos_a,
                    pixel_size=1.0, snr=np.inf, tip_blur=2.0, seed=0)  # same 2 Å tip
    coarse = simulate(band=band, shape=(128, 128), energies=[10.0], positions=pos_a // 2,
                      pixel_size=2.0, snr=np.inf, seed=0)
    kf = extract(fine.observation, method="two-stage", pixel_size=1.0, kernel_size=65)
    kc = extract(coarse.observation, method="two-stage", pixel_size=2.0, kernel_size=33)
    # both windows span ±32 Å; compare on the coarse grid
    fine_on_coarse = kf.kernel[0][::2, ::2]
    assert kernel_similarity(fine_on_coarse, kc.kernel[0]) > 0.9
    # the fine map's mean wavelength (≈ 27 px) lies beyond the networks' comfort band
    # and is brought into it; the coarse one (≈ 13 px) is read as it is
    assert kf.info["working_zoom"] < 0.9
    assert kc.info["working_zoom"] == 1.0
    # and each sampling recovers its own true kernel, tail included
    assert tail_similarity(fine.kernel[0], kf.kernel[0]) > 0.8
    assert tail_similarity(coarse.kernel[0][16:49, 16:49], kc.kernel[0]) > 0.8


def test_refine_lowers_the_residual_and_improves_the_tail():
    # a rectangular (C2) band at SNR 5: the two-stage start is good, not perfect
    sim = simulate(family="rectangular", seed=1, n_scatterers=25, snr=5.0)
    obs, truth = sim.observation[:3], sim.kernel[:3]
    two = extract(obs, method="two-stage")
    ref = extract(obs, method="refine")
    assert ref.info["refine_residual_after"] < ref.info["refine_residual_before"] - 0.02
    assert ref.info["relative_residual"] < two.info["relative_residual"]
    assert np.median(tail_similarity(truth, ref.kernel)) > np.median(
        tail_similarity(truth, two.kernel)) + 0.03


def test_refine_never_returns_a_worse_fit(sim):
    ref = extract(sim.observation, method="refine")
    assert ref.info["refine_residual_after"] <= ref.info["refine_residual_before"]


def test_cli_extract_round_trip_and_bad_file(tmp_path, capsys):
    from napari_qpi.cli import main
    from napari_qpi.io import load_stack

    sim = simulate(seed=2, energies=[0.0, 30.0], shape=(96, 96))
    src = QPIStack(sim.observation, sim.energies, sim.pixel_size).save(tmp_path / "s.npz")
    assert main(["extract", str(src), "--out", str(tmp_path / "k.npz"), "--quiet"]) == 0
    kernel = load_stack(tmp_path / "k.npz")
    assert kernel.shape == (2, 65, 65)
    np.testing.assert_allclose(kernel.energies, sim.energies)
    assert np.median(tail_similarity(sim.kernel, kernel.data)) > 0.8
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert main(["extract", str(tmp_path / "bad.npz"), "--quiet"]) == 2
    assert "bad.npz" in capsys.readouterr().err
