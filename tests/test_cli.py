"""The napari-qpi command: documented options, one-line errors, one output file."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_qpi import __version__, simulate
from napari_qpi.cli import main
from napari_qpi.extraction.registry import METHODS
from napari_qpi.io import QPIStack, load_stack


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    """A small simulated stack written by ``napari-qpi simulate`` (positions inside)."""
    path = tmp_path_factory.mktemp("cli") / "sim.npz"
    assert main(["simulate", "--out", str(path), "--size", "64", "--energies", "2",
                 "--scatterers", "6", "--seed", "3"]) == 0
    return path


def _one_error_line(capsys, status, expected=2) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert status == expected, err
    assert len(lines) == 1, err
    assert lines[0].startswith("napari-qpi: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_help_lists_methods_defaults_and_no_rst(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, method in METHODS.items():
        assert f"{name}: " in out
        assert method.description.split()[0] in out
    assert "``" not in out
    assert main(["extract", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: auto)" in out and "kernel.npz" in out
    assert "uncertainty" in out  # the output file is documented
    for command in ("simulate", "demo", "benchmark", "train"):
        assert main([command, "--help"]) == 0
        assert "(default: " in capsys.readouterr().out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"napari-qpi {__version__}"


@pytest.mark.parametrize("argv, phrase", [
    (["extract", "{stack}", "--device", "banana"], "banana"),
    (["extract", "{stack}", "--positions", "{tmp}/missing.txt"], "missing.txt"),
    (["extract", "{stack}", "--out", "/nonexistent/k.npz"], "does not exist"),
    (["extract", "{stack}", "--out", "{stack}"], "is the input file"),
    (["extract", "{tmp}/nothing.npz"], "nothing.npz"),
    (["extract", "{stack}", "--kernel-size", "4"], "odd"),
    (["extract", "{stack}", "--method", "magic"], "magic"),
    (["extract", "{stack}", "--weights", "bogus"], "bogus"),
    (["benchmark", "--weights", "bogus"], "bogus"),
    (["benchmark", "--n", "-1"], "--n"),
    (["benchmark", "--methods", "power,magic"], "magic"),
    (["benchmark", "--foreign", "{tmp}/no_such_dir"], "no_such_dir"),
    (["benchmark", "--guided"], "--guided needs --foreign"),
    (["benchmark", "--mixed", "{tmp}/none.npz"], "none.npz"),
    (["benchmark", "--mixed", "--n-types", "9"], "--mixed"),
    (["extract", "{stack}", "--n-types", "7"], "--n-types"),
    (["train", "--out", "{tmp}/tr", "--steps", "0"], "--steps"),
    (["train", "--out", "{tmp}/tr", "--bank-size", "0"], "--bank-size"),
    (["train", "--out", "{stack}"], "is a file"),
    (["train", "--out", "{tmp}/tr", "--device", "banana"], "banana"),
    (["train", "--out", "{tmp}/tr", "--init-from", "bogus"], "--init-from 'bogus'"),
    (["train", "--out", "{tmp}/tr", "--stage2-steps", "0"], "--stage2-steps"),
    (["train", "--out", "{tmp}/tr", "--sampler", "magic"], "--sampler"),
    (["simulate", "--out", "{tmp}/x.npz", "--size", "4"], "--size"),
    (["simulate", "--out", "{tmp}/x.npz", "--snr", "nan"], "--snr"),
    (["demo", "--method", "wiener"], "wiener"),
    (["extract"], "INPUT"),
    (["extract", "{tmp}/*.nothing"], "no file matches"),
    (["extract", "{stack}", "{stack}", "--positions", "{stack}"], "one input"),
    (["frobnicate"], "frobnicate"),
])
def test_every_failure_is_one_line_and_status_2(argv, phrase, stack_file, tmp_path, capsys):
    argv = [a.format(stack=stack_file, tmp=tmp_path) for a in argv]
    line = _one_error_line(capsys, main(argv))
    assert phrase in line
    assert not (tmp_path / "tr").exists()  # bad training arguments: nothing written


def test_cuda_on_a_cpu_build_is_one_line(stack_file, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    line = _one_error_line(capsys, main(["extract", str(stack_file), "--device", "cuda"]))
    assert "cuda" in line.lower()


def test_bad_file_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    line = _one_error_line(capsys, main(["extract", str(tmp_path / "bad.npz")]))
    assert "bad.npz" in line


def test_extract_writes_one_documented_file(stack_file, tmp_path, capsys):
    out = tmp_path / "k.npz"
    assert main(["extract", str(stack_file), "--out", str(out), "--method", "wiener",
                 "--positions", str(stack_file), "--kernel-size", "31"]) == 0
    captured = capsys.readouterr()
    assert str(out) in captured.out
    assert "relative residual" in captured.out and "cross-validated" in captured.out
    assert " 0it" not in captured.err  # no empty progress bar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npz"]  # no hidden extras
    with np.load(out, allow_pickle=False) as z:
        assert z["data"].shape == (2, 31, 31)
        assert z["activation"].shape == (64, 64)
        assert z["residual"].shape == (2, 64, 64)
        # the scatterers found, one species
        found = np.argwhere(z["activation"] > 0)
        np.testing.assert_array_equal(np.sort(z["positions"], 0), np.sort(found, 0))
        assert not z["types"].any() and "kernels" not in z
        meta = json.loads(str(z["metadata"]))
    assert meta["method"] == "wiener" and meta["version"] == __version__
    assert meta["info"]["kernel_size"] == 31
    assert np.isfinite(meta["info"]["relative_residual"])
    kernel = load_stack(out)  # the kernel stack reads back like any stack
    np.testing.assert_allclose(kernel.energies, load_stack(stack_file).energies)


@pytest.mark.slow
def test_extract_with_two_species_writes_each_species_kernel_and_positions(tmp_path):
    from napari_qpi.physics.bands import default_band
    from napari_qpi.physics.kernels import Defect, default_defect

    band = default_band("square")
    v = 3 * band.energy_scale()
    sim = simulate(band=band, energies=[0.0], n_scatterers=30, snr=20, seed=4, defects=[
        default_defect(band, v), Defect(-v, ((0.0, 0.0), (0.0, 1.0)), (1.0, 1.0))])
    src, out = tmp_path / "mixed.npz", tmp_path / "k.npz"
    np.savez(src, data=sim.observation, energies=sim.energies)
    assert main(["extract", str(src), "--out", str(out), "--quiet", "--method",
                 "two-stage", "--n-types", "2"]) == 0
    with np.load(out, allow_pickle=False) as z:
        kernels, types, positions = z["kernels"], z["types"], z["positions"]
        assert kernels.shape[:2] == (2, 1) and z["activation"].shape == (2, 128, 128)
        np.testing.assert_allclose(z["data"], kernels[0])
    assert set(types.tolist()) == {0, 1} and len(positions) == len(types)
    # each true scatterer has a found one nearby, and each species' are mostly one kind
    d = np.abs(positions[:, None] - sim.positions[None]).max(-1)
    assert np.mean(d.min(0) <= 4) >= 0.8
    for t in (0, 1):
        truth = sim.types[d[types == t].argmin(1)]
        assert np.mean(truth == np.bincount(truth).argmax()) >= 0.9


def test_extract_guided_by_the_simulations_positions_scores_well(tmp_path, capsys):
    sim = simulate(seed=2, energies=[0.0, 30.0], shape=(96, 96), n_scatterers=12)
    src = QPIStack(sim.observation, sim.energies, sim.pixel_size,
                   {"positions": sim.positions.tolist()}).save(tmp_path / "s.npz")
    assert main(["extract", str(src), "--out", str(tmp_path / "k.npz"), "--quiet",
                 "--method", "wiener", "--positions", str(src), "--kernel-size", "65"]) == 0
    from napari_qpi.evaluation import score

    assert score(sim.kernel, load_stack(tmp_path / "k.npz").data)["tail_similarity"] > 0.6


def test_extract_never_overwrites_its_input(stack_file, tmp_path, capsys):
    src = tmp_path / "in.npz"
    src.write_bytes(stack_file.read_bytes())
    for flag in ([], ["--overwrite"], ["--force"]):  # --force: the old name of --overwrite
        _one_error_line(capsys, main(["extract", str(src), "--out", str(src), *flag]))
        assert src.read_bytes() == stack_file.read_bytes()


def test_positions_from_a_text_file(stack_file, tmp_path):
    pos = np.asarray(load_stack(stack_file).metadata["positions"])
    np.savetxt(tmp_path / "p.txt", pos)
    assert main(["extract", str(stack_file), "--out", str(tmp_path / "k.npz"), "--quiet",
                 "--method", "wiener", "--positions", str(tmp_path / "p.txt")]) == 0


def test_closed_pipe_is_one_line_without_traceback(tmp_path):
    # the reader of stdout is gone before the command writes (`napari-qpi ... | head`)
    proc = subprocess.Popen([sys.executable, "-m", "napari_qpi.cli", "simulate", "--out",
                             str(tmp_path / "s.npz"), "--size", "16", "--energies", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    status = proc.wait(timeout=120)
    assert "Traceback" not in err, err
    assert status == 2, err
    assert [ln for ln in err.splitlines() if ln.strip()] == [
        "napari-qpi: error: output closed before everything was written (broken pipe)"]


def test_batch_over_a_glob_reports_a_bad_file_and_runs_the_rest(stack_file, tmp_path,
                                                                capsys):
    for name in ("a", "b"):
        (tmp_path / f"{name}.npz").write_bytes(stack_file.read_bytes())
    (tmp_path / "c.npz").write_bytes(b"broken")
    status = main(["extract", str(tmp_path / "*.npz"), "--out", str(tmp_path / "out"),
                   "--method", "power", "--quiet"])
    captured = capsys.readouterr()
    assert status == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_kernel.npz",
                                                                    "b_kernel.npz"]
    assert "[3/3]" in captured.out and "c.npz" in captured.err
    assert "Traceback" not in captured.err


def test_warnings_and_quality_scores_are_printed(capsys):
    from napari_qpi.cli.checks import print_warnings, quality_line

    print_warnings({"warnings": ["slice 3 is constant: left out", "fit explains little"]})
    assert capsys.readouterr().err.splitlines() == [
        "warning: slice 3 is constant: left out", "warning: fit explains little"]
    line = quality_line({"relative_residual": 0.41, "cv_residual": 0.43,
                         "kernel_size": 31, "kernel_size_auto": True})
    assert line == ("relative residual 0.410, cross-validated residual 0.430, "
                    "kernel window 31 px (chosen from the data)")


@pytest.mark.slow
def test_train_options_reach_the_recorded_config(tmp_path, capsys):
    out = tmp_path / "tr"
    assert main(["train", "--out", str(out), "--bank-size", "4", "--sampler", "families",
                 "--steps", "2", "--stage2-steps", "1", "--init-from", "seen",
                 "--guide-shift", "3", "--self-guide", "0.5", "--anchored-encoder",
                 "--quiet"]) == 0
    cfg = json.loads((out / "train_log.json").read_text())["train"]
    assert cfg["model"]["anchored_encoder"] is True
    assert (cfg["stage1_steps"], cfg["stage2_steps"], cfg["onestep_steps"]) == (2, 1, 2)
    assert (cfg["sampler"], cfg["init_from"], cfg["bank_size"]) == ("families", "seen", 4)
    assert cfg["guide_shift"] == 3 and cfg["self_guide"] == 0.5


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_train_self_guide_must_be_a_fraction(tmp_path, capsys, value):
    assert main(["train", "--out", str(tmp_path / "tr"), "--self-guide", value,
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--self-guide" in err and "Traceback" not in err
    assert not (tmp_path / "tr").exists()


@pytest.mark.parametrize("stage", ["stage1", "onestep"])
def test_train_zero_steps_need_a_warm_start(tmp_path, capsys, stage):
    assert main(["train", "--out", str(tmp_path / "tr"), f"--{stage}-steps", "0",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--init-from" in err and f"--{stage}-steps" in err and "Traceback" not in err
    assert not (tmp_path / "tr").exists()


@pytest.mark.slow
def test_train_zero_stage1_steps_reach_the_config_and_keep_the_decoder(tmp_path):
    import torch
    from safetensors.torch import load_file

    from napari_qpi.models.weights import shipped_path

    out = tmp_path / "tr"
    assert main(["train", "--out", str(out), "--bank-size", "4", "--sampler", "families",
                 "--steps", "2", "--stage1-steps", "0", "--init-from", "seen",
                 "--quiet"]) == 0
    cfg = json.loads((out / "train_log.json").read_text())["train"]
    assert (cfg["stage1_steps"], cfg["stage2_steps"], cfg["onestep_steps"]) == (0, 2, 2)
    old = load_file(str(shipped_path("seen") / "vae.safetensors"))
    new = load_file(str(out / "vae.safetensors"))
    assert all(torch.equal(old[k], new[k]) for k in old)


def test_extract_one_view_asks_the_latent_fit_for_one_view(tmp_path, monkeypatch):
    """--one-view reaches extract as AutoConfig(views=(0,), stack_views=(0,)) and is
    recorded in the output's metadata."""
    import importlib

    module = importlib.import_module("napari_qpi.extraction.extract")
    real, seen = module.iter_extract, []

    def spy(*args, config=None, **kwargs):
        seen.append(config)
        return (yield from real(*args, config=config, **kwargs))

    monkeypatch.setattr(module, "iter_extract", spy)
    src, out = tmp_path / "m.npy", tmp_path / "k.npz"
    np.save(src, np.random.default_rng(0).standard_normal((2, 48, 48)))
    assert main(["extract", str(src), "--out", str(out), "--quiet", "--method", "power",
                 "--kernel-size", "9", "--one-view"]) == 0
    assert seen[-1].views == (0,) and seen[-1].stack_views == (0,)
    with np.load(out) as z:
        assert json.loads(str(z["metadata"]))["one_view"] is True
