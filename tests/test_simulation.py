"""``simulate``: reproducibility, ground truth consistency, noise and artefacts,
argument checks, and the operating range over all six families."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_qpi import simulate
from napari_qpi.physics import FAMILIES
from napari_qpi.physics.noise import add_noise


def _radial_power(image: np.ndarray, n: int) -> np.ndarray:
    """Radially averaged |FFT|² of a 2-D array zero-padded to n×n, in integer |q| bins."""
    f = np.abs(np.fft.fft2(image - image.mean(), s=(n, n))) ** 2
    q = np.fft.fftfreq(n) * n
    r = np.rint(np.hypot(q[:, None], q[None, :])).astype(int)
    return np.bincount(r.ravel(), f.ravel()) / np.bincount(r.ravel())


def test_defaults_shapes_and_dtypes() -> None:
    sim = simulate(seed=0)
    assert sim.observation.shape == (8, 128, 128)
    assert sim.kernel.shape == (8, 65, 65)
    assert sim.observation.dtype == np.float32
    assert np.isfinite(sim.observation).all()
    assert sim.kernel.std() > 0


def test_same_seed_same_arrays_other_seed_differs() -> None:
    kw = {"shape": (64, 64), "kernel_size": 33, "energies": [0.0, 10.0], "snr": 5.0}
    a, b, c = simulate(seed=3, **kw), simulate(seed=3, **kw), simulate(seed=4, **kw)
    np.testing.assert_array_equal(a.observation, b.observation)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.array_equal(a.positions, c.positions)
    assert not np.allclose(a.observation, c.observation)


@pytest.mark.parametrize("family", FAMILIES)
def test_kernel_centre_is_the_scatterer(family: str) -> None:
    """A lone scatterer at (r, c): the clean map around it is strength × kernel."""
    sim = simulate(family=family, shape=(64, 64), kernel_size=33, energies=None,
                   positions=[[30, 34]], snr=np.inf, seed=1)
    window = sim.clean[:, 30 - 16 : 30 + 17, 34 - 16 : 34 + 17]
    expected = sim.activation[30, 34] * sim.kernel
    np.testing.assert_allclose(window, expected, atol=1e-4 * np.abs(expected).max())
    assert sim.activation[30, 34] > 0 and np.count_nonzero(sim.activation) == 1


def test_linear_observation_is_sum_of_shifted_kernels() -> None:
    """Several scatterers, linear model: the map is Σ s_i K(r − r_i) (checked where the
    kernel window covers every scatterer's contribution, i.e. with a short decay)."""
    sim = simulate(family="square", shape=(64, 64), kernel_size=63, n_scatterers=4,
                   energies=[0.0], broadening=40.0, snr=np.inf, seed=2)
    pad = 31
    canvas = np.zeros((1, 64 + 2 * pad, 64 + 2 * pad))
    for (r, c) in sim.positions:
        canvas[:, r : r + 63, c : c + 63] += sim.activation[r, c] * sim.kernel
    rebuilt = canvas[:, pad:-pad, pad:-pad]
    err = np.linalg.norm(rebuilt - sim.clean) / np.linalg.norm(sim.clean)
    assert err < 0.02


def test_power_spectrum_peaks_where_kernel_does() -> None:
    """|Y(q)|² ≈ |K(q)|² |X(q)|²: the ring of the QPI pattern sits at the kernel's."""
    sim = simulate(family="free_electron", shape=(128, 128), n_scatterers=40,
                   energies=[0.0, 40.0], snr=np.inf, seed=5)
    for e in range(2):
        obs = _radial_power(sim.observation[e], 128)
        ker = _radial_power(sim.kernel[e], 128)
        lo = 4  # skip the DC / background region
        assert abs(int(obs[lo:64].argmax()) - int(ker[lo:64].argmax())) <= 2


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize("snr", [1.0, 10.0])
def test_snr_is_what_was_asked(kind: str, snr: float) -> None:
    sim = simulate(shape=(64, 64), kernel_size=33, energies=[-10.0, 0.0, 20.0], snr=snr,
                   noise=kind, seed=7)
    noise = (sim.observation - sim.clean).astype(float)
    ratio = sim.clean.reshape(3, -1).var(1) / noise.reshape(3, -1).var(1)
    np.testing.assert_allclose(ratio, snr, rtol=0.05)


def test_pink_noise_is_red() -> None:
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((1, 128, 128))
    noise = add_noise(clean, 1.0, kind="pink", rng=1)[0] - clean[0]
    p = _radial_power(noise, 128)
    assert p[2:8].mean() > 5 * p[40:60].mean()
    white = add_noise(clean, 1.0, kind="white", rng=1)[0] - clean[0]
    pw = _radial_power(white, 128)
    assert pw[2:8].mean() < 2 * pw[40:60].mean()


def test_streaks_and_background_only_when_asked() -> None:
    kw = {"shape": (64, 64), "kernel_size": 33, "energies": [0.0, 20.0], "seed": 9}
    plain = simulate(**kw)
    np.testing.assert_array_equal(simulate(streaks=0.0, background=0.0, **kw).observation,
                                  plain.observation)
    streaky = simulate(streaks=1.0, **kw)
    diff = (streaky.observation - plain.observation).astype(float)
    assert np.abs(diff).max() > 0.1 * plain.clean.std()
    # a streak is one offset per scan line: constant along each row
    assert np.abs(diff - diff.mean(axis=-1, keepdims=True)).max() < 1e-5 * np.abs(diff).max()
    bg = simulate(background=1.0, **kw)
    diff = (bg.observation - plain.observation).astype(float)
    assert np.abs(diff).max() > 0.1 * plain.clean.std()
    # a smooth background: its curvature is tiny next to its range (noise would not be)
    curvature = np.abs(ndimage.laplace(diff[0])[1:-1, 1:-1]).max()
    assert curvature < 0.01 * np.ptp(diff[0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"family": "graphene"}, "family"),
        ({"model": "born"}, "model"),
        ({"shape": (8, 8)}, "shape"),
        ({"shape": (1024, 64)}, "shape"),
        ({"kernel_size": 32}, "kernel_size"),
        ({"pixel_size": -1.0}, "pixel_size"),
        ({"broadening": 0.0}, "broadening"),
        ({"energies": [0.0, np.nan]}, "energies"),
        ({"n_scatterers": 0}, "n_scatterers"),
        ({"positions": [[200, 3]]}, "positions"),
        ({"noise": "brown"}, "noise"),
        ({"snr": -1.0}, "snr"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        simulate(**{"shape": (32, 32), "kernel_size": 17, "energies": [0.0], **kwargs})


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("model", ["linear", "tmatrix"])
def test_every_family_and_model_runs(family: str, model: str) -> None:
    sim = simulate(family=family, model=model, shape=(48, 48), kernel_size=25,
                   n_scatterers=6, energies=None, snr=20.0, seed=0)
    assert sim.observation.shape == (8, 48, 48) and sim.kernel.shape == (8, 25, 25)
    assert np.isfinite(sim.observation).all()
    # every slice carries signal, and the kernel is largest near its centre
    assert (sim.clean.reshape(8, -1).std(1) > 0).all()
    centre = np.abs(sim.kernel[:, 8:17, 8:17]).max()
    assert centre >= np.abs(sim.kernel).max() * 0.99
    assert sim.metadata["family"] == family and sim.metadata["model"] == model


@pytest.mark.parametrize(
    ("size", "kernel_size", "n_energies"),
    [(64, 63, 1), (256, 33, 2), (64, 33, 64)],
)
def test_operating_range(size: int, kernel_size: int, n_energies: int) -> None:
    sim = simulate(shape=(size, size), kernel_size=kernel_size,
                   energies=np.linspace(-10, 40, n_energies), n_scatterers=10, seed=0)
    assert sim.observation.shape == (n_energies, size, size)
    assert sim.kernel.shape == (n_energies, kernel_size, kernel_size)
    assert np.isfinite(sim.observation).all()


def test_tmatrix_differs_from_linear_for_dense_strong_scatterers() -> None:
    kw = {"family": "square", "shape": (48, 48), "kernel_size": 25, "n_scatterers": 60,
          "energies": [0.0], "snr": np.inf, "seed": 4}
    lin = simulate(model="linear", **kw)
    tm = simulate(model="tmatrix", **kw)
    np.testing.assert_array_equal(lin.positions, tm.positions)
    np.testing.assert_array_equal(lin.kernel, tm.kernel)
    assert np.linalg.norm(tm.clean - lin.clean) / np.linalg.norm(lin.clean) > 0.05
