"""Result layers in a real viewer: contrast on every run, q-space in Å⁻¹, stale outputs,
the observation picker's choices and the energy readout."""

from __future__ import annotations

import numpy as np
import pint
import pytest

from napari_qpi.extraction.extract import Extraction
from napari_qpi.napari.layers import observation_candidates, synthetic_layers
from napari_qpi.napari.results import result_layers, show_result

SOURCE = "QPI observation"


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def sim():
    from napari_qpi import simulate

    return simulate(seed=0, shape=(64, 64), kernel_size=21, n_scatterers=6,
                    energies=np.linspace(-20, 40, 4))


def _add_sim(viewer, sim):
    from napari_qpi.napari.layers import apply_layers

    return apply_layers(viewer, synthetic_layers(sim))[0]


def _layer(viewer, name):
    """A layer of the viewer or of its q-space canvas (where the |FFT| is shown)."""
    from napari_qpi.napari.qspace import q_viewer

    if name in viewer.layers:
        return viewer.layers[name]
    return q_viewer(viewer, create=False).layers[name]


def _fake(sim, *, uncertainty=True, scale=1e-7, method="fake", seed=0):
    """An Extraction on the scale of a real Nanonis map (residual ~1e-7)."""
    rng = np.random.default_rng(seed)
    e, k = len(sim.energies), sim.kernel.shape[-1]
    return Extraction(kernel=sim.kernel * (1 + 0.1 * seed), activation=rng.exponential(
        size=sim.observation.shape[-2:]) * (rng.random(sim.observation.shape[-2:]) < 0.01),
        residual=scale * rng.normal(size=sim.observation.shape),
        uncertainty=rng.random((e, k, k)) if uncertainty else None, latent=None,
        method=method, info={"pixel_size": sim.pixel_size})


def test_every_output_gets_contrast_of_its_own_data_on_every_run(viewer, sim):
    # issue 12 defect 1: the second run left (0, 1) on residual, activation and |FFT|
    sim.observation[:] *= 1e-7  # a map in volts of lock-in signal, like a .3ds grid
    obs = _add_sim(viewer, sim)
    for seed in (0, 1):
        show_result(viewer, obs, _fake(sim, seed=seed))
        residual = viewer.layers[f"{SOURCE} residual"]
        spread = np.percentile(np.abs(obs.data - obs.data.mean(axis=(1, 2), keepdims=True)),
                               99.5)
        # the residual is drawn on the observation's own colour scale
        np.testing.assert_allclose(residual.contrast_limits, (-spread, spread), rtol=1e-6)
        for suffix in ("activation", "kernel |FFT|", "uncertainty"):
            layer = _layer(viewer, f"{SOURCE} {suffix}")
            data = layer.data
            if suffix == "kernel |FFT|":  # in its canvas, the shown energy's contrast
                from napari_qpi.napari.energy import energy_index
                from napari_qpi.napari.qspace import q_viewer

                data = data[energy_index(q_viewer(viewer), layer)]
            hi = np.percentile(data, 99.5)
            assert layer.contrast_limits[0] == 0
            assert layer.contrast_limits[1] == pytest.approx(hi, rel=1e-5), suffix
        kernel = viewer.layers[f"{SOURCE} kernel"]
        m = np.percentile(np.abs(kernel.data), 99.5)
        np.testing.assert_allclose(kernel.contrast_limits, (-m, m), rtol=1e-5)


def test_kernel_fft_is_in_inverse_angstrom_centred_on_q0(viewer, sim):
    # issue 12 defect 10: the |FFT| was labelled Å with the map's 2 Å/px scale
    obs = _add_sim(viewer, sim)
    show_result(viewer, obs, _fake(sim))
    fft = _layer(viewer, f"{SOURCE} kernel |FFT|")
    k = sim.kernel.shape[-1]
    q_step = 2 * np.pi / (k * sim.pixel_size)
    np.testing.assert_allclose(fft.scale[1:], (q_step, q_step))
    assert fft.scale[0] == pytest.approx(obs.scale[0])
    ureg = pint.get_application_registry()
    assert tuple(fft.units[1:]) == (ureg.Unit("1/angstrom"),) * 2
    assert tuple(fft.axis_labels[1:]) == ("qy", "qx")
    # q = 0 (the fftshifted centre pixel, the brightest of a kernel with a net charge)
    # sits on the world origin
    np.testing.assert_allclose(fft.data_to_world((0, k // 2, k // 2))[1:], (0, 0), atol=1e-12)
    # a pixel step in the data is one q step in the world
    np.testing.assert_allclose(fft.data_to_world((0, k // 2, k // 2 + 1))[2], q_step)



def test_outputs_a_method_did_not_produce_are_removed(viewer, sim):
    # issue 12 defect 5: a learned run's uncertainty survived a classical run
    obs = _add_sim(viewer, sim)
    show_result(viewer, obs, _fake(sim, uncertainty=True))
    assert f"{SOURCE} uncertainty" in viewer.layers
    other = viewer.add_image(sim.observation, name="other")
    show_result(viewer, other, _fake(sim, uncertainty=True))
    show_result(viewer, obs, _fake(sim, uncertainty=False, method="power"))
    assert f"{SOURCE} uncertainty" not in viewer.layers
    assert "other uncertainty" in viewer.layers  # another source's outputs stay
    assert viewer.layers[f"{SOURCE} kernel"].metadata["method"] == "power"


def test_the_observation_choices_never_hold_outputs_or_truths(viewer, sim):
    # issue 12 defect 2: the picker chose the hidden true kernel
    plain = viewer.add_image(np.zeros((32, 32)), name="a user's map")
    obs = _add_sim(viewer, sim)
    show_result(viewer, obs, _fake(sim))
    viewer.add_image(np.zeros((16, 16, 3), dtype=np.uint8), name="photo", rgb=True)
    names = [layer.name for layer in observation_candidates(viewer.layers)]
    assert names == [SOURCE, plain.name]  # marked observations first


def test_result_layers_of_a_map_without_pixel_size_are_in_pixels(viewer, sim):
    layer = viewer.add_image(sim.observation, name="raw")
    fake = _fake(sim)
    fake.info["pixel_size"] = None
    tuples = {kw["name"]: kw for _, kw, _ in result_layers(fake, layer)}
    fft = tuples["raw kernel |FFT|"]
    k = sim.kernel.shape[-1]
    assert fft["scale"][-1] == pytest.approx(2 * np.pi / k)
    assert fft["units"][-1] == "1/pixel"


def test_energy_readout_follows_the_slider(viewer, sim):
    from napari_qpi.napari.energy import install_energy_overlay, text_overlay

    _add_sim(viewer, sim)
    install_energy_overlay(viewer)
    viewer.dims.set_current_step(0, 2)
    assert text_overlay(viewer).text == f"E = {sim.energies[2]:.4g} meV"
    assert text_overlay(viewer).visible


def test_a_layer_in_pixels_has_no_pixel_size(viewer, sim):
    from napari_qpi.napari.compute import pixel_size_of, prepare

    plain = viewer.add_image(sim.observation, name="plain")  # scale 1, no metadata
    assert pixel_size_of(plain) is None
    assert prepare(plain, method="power").pixel_size is None
    obs = _add_sim(viewer, sim)
    assert pixel_size_of(obs) == pytest.approx(sim.pixel_size)
    scaled = viewer.add_image(sim.observation[0], scale=(0.2, 0.2), units="nm")
    assert pixel_size_of(scaled) == pytest.approx(2.0)


def test_several_species_get_their_own_kernel_scatterer_map_and_points(viewer, sim):
    obs = _add_sim(viewer, sim)
    show_result(viewer, obs, _fake(sim))  # a one-species run first: its layers go
    rng = np.random.default_rng(0)
    acts = np.zeros((2, *sim.observation.shape[-2:]))
    acts[0, 10, 12] = acts[0, 40, 7] = 1.0
    acts[1, 30, 30] = 1.0
    two = Extraction(kernel=np.stack([sim.kernel, -sim.kernel]), activation=acts,
                     residual=1e-2 * rng.normal(size=sim.observation.shape),
                     uncertainty=None, latent=None, method="auto",
                     info={"pixel_size": sim.pixel_size, "n_types": 2})
    show_result(viewer, obs, two)
    for t, (n, colour) in enumerate(((2, "cyan"), (1, "magenta"))):
        tag = f"species {t + 1}"
        kernel = viewer.layers[f"{SOURCE} kernel, {tag}"]
        np.testing.assert_allclose(kernel.data, two.kernel[t])
        points = viewer.layers[f"{SOURCE} scatterers, {tag}"]
        assert len(points.data) == n
        # the points sit on the scatterers in world coordinates, like the map
        world = points.data_to_world(points.data[0])
        np.testing.assert_allclose(world, obs.data_to_world((0, *np.argwhere(acts[t])[0]))[1:])
        np.testing.assert_allclose(points.face_color[0], rgba(colour))
        assert _layer(viewer, f"{SOURCE} kernel |FFT|, {tag}").data.shape == kernel.data.shape
        assert viewer.layers[f"{SOURCE} activation, {tag}"].colormap.name == colour
    # the read-out dock offers each species' kernel
    from napari_qpi.napari.plots_widget import kernel_candidates

    names = [layer.name for layer in kernel_candidates(viewer.layers)]
    assert names[:2] == [f"{SOURCE} kernel, species 1", f"{SOURCE} kernel, species 2"]
    # the points speak the map's units: napari's toast fires when units mix
    assert viewer.layers.extent.units is not None
    # the one-species outputs of the earlier run are gone; the residual stays
    for stale in ("kernel", "activation", "uncertainty"):
        assert f"{SOURCE} {stale}" not in viewer.layers
    assert f"{SOURCE} residual" in viewer.layers


def rgba(name):
    from napari.utils.colormaps.standardize_color import transform_color

    return transform_color(name)[0]
