"""Bad input to ``extract``, round two: ordinary non-square maps run with every method,
extreme value scales give the same kernel, a NaN never passes as a result, and arguments
at their edges get one clear error."""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from napari_qpi import extract, simulate
from napari_qpi.extraction import threads
from napari_qpi.extraction.registry import METHODS, MethodResult
from napari_qpi.extraction.validate import MEMORY_LIMIT, estimate_memory

# the module, not the function the package re-exports under the same name
extract_module = importlib.import_module("napari_qpi.extraction.extract")

RNG = np.random.default_rng(1)
MAP = RNG.standard_normal((64, 64))


class _Sim:
    def __init__(self, shape: tuple[int, int]) -> None:
        side = min(shape)
        sim = simulate(shape=shape, n_scatterers=6, kernel_size=min(65, side - 1 + side % 2),
                       seed=3)
        self.observation, self.positions = sim.observation[0], sim.positions


def _sim(shape: tuple[int, int]) -> _Sim:
    return _Sim(shape)


# --------------------------------------------------------------------------- shapes

SHAPES = [(40, 64), (64, 40), (16, 200)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("method", [m for m in METHODS if m != "wiener"])
def test_every_method_runs_on_non_square_maps(method: str, shape) -> None:
    sim = _sim(shape)
    res = extract(sim.observation, method=method, rng=0)
    assert res.residual.shape == sim.observation.shape
    assert res.activation.shape == shape
    assert np.isfinite(res.kernel).all() and np.abs(res.kernel).max() > 0
    assert res.kernel.shape[-1] <= min(shape)


@pytest.mark.parametrize("shape", SHAPES[:2], ids=lambda s: f"{s[0]}x{s[1]}")
def test_guided_extraction_on_non_square_maps(shape) -> None:
    sim = _sim(shape)
    res = extract(sim.observation, method="wiener", positions=sim.positions)
    assert res.residual.shape == sim.observation.shape
    assert res.info["relative_residual"] < 0.9


# --------------------------------------------------------------------------- scales

@functools.cache
def _power_reference():
    return extract(MAP, method="power", preprocess=None)


@pytest.mark.parametrize("factor", [1e154, 1e40, 1e-45, 1e-300])
def test_value_scale_only_scales_the_kernel(factor: float) -> None:
    """Units must not matter: a map in A/V or in nS gives one kernel, times the factor."""
    ref = _power_reference()
    res = extract(MAP * factor, method="power", preprocess=None)
    assert np.isfinite(res.kernel).all() and np.isfinite(res.residual).all()
    assert np.isfinite(res.info["cv_residual"])
    np.testing.assert_allclose(res.kernel / factor, ref.kernel, rtol=1e-4,
                               atol=1e-5 * np.abs(ref.kernel).max())
    assert res.info["noise_level"] == pytest.approx(ref.info["noise_level"] * factor,
                                                    rel=1e-4)


def test_nan_kernel_is_an_error_naming_its_cause(monkeypatch) -> None:
    """Diverged or corrupt weights: the NaN must not pass every ``cv > x`` check."""
    def nan_method(spec, problem, **kw):
        yield from ()
        k = problem.kernel_size
        return MethodResult(np.full((len(problem.observation), k, k), np.nan), None, None,
                            None, {})

    monkeypatch.setattr(extract_module, "run_method", nan_method)
    with pytest.raises(ValueError, match="kernel of method 'two-stage'.*NaN.*weight set"):
        extract(MAP, method="two-stage")


# --------------------------------------------------------------------------- arguments

EDGES = [
    ({"positions": [[63.5, 10]], "method": "wiener"}, "inside the 64×64 map"),
    ({"positions": [[-0.4, 10]], "method": "wiener"}, "inside the 64×64 map"),
    ({"sparsity": -1}, "sparsity must be ≥ 0"),
    ({"sparsity": np.nan}, "sparsity must be a finite number"),
    ({"sparsity": np.inf}, "sparsity must be a finite number"),
    ({"sparsity": "abc"}, "sparsity must be a real number"),
    ({"rng": 1.5}, "rng must be a whole number"),
    ({"rng": -3}, "rng must be ≥ 0"),
    ({"rng": "7"}, "rng must be an integer"),
    ({"device": "cpu:7"}, "the CPU is one device"),
    ({"observation": np.ma.masked_array(MAP, mask=MAP > 2)}, "masked array with"),
    ({"observation": np.broadcast_to(np.float32(1), (40, 4096, 4096))},
     "would need about .* GB.*crop"),
    ({"config": {"prefer_margin": 0.2}}, "is not an AutoConfig; pass napari_qpi.AutoConfig"),
]


@pytest.mark.parametrize(("kwargs", "phrase"), [
    ({"views": ()}, r"views=\(\)\): give distinct quarter turns from 0–3"),
    ({"views": (0, 4)}, "views=.*quarter turns"),
    ({"prefer_margin": -0.1}, "prefer_margin=-0.1.*finite number ≥ 0"),
    ({"zoom_margin": float("nan")}, "zoom_margin=nan"),
    ({"window_margin": "5 %"}, "window_margin="),
    ({"latent_iterations": (6, 15)}, "latent_iterations=.*3 whole numbers"),
    ({"refine_iterations": (25, 0)}, "refine_iterations=.*2 whole numbers ≥ 1"),
])
def test_auto_config_refuses_rules_it_cannot_follow(kwargs: dict, phrase: str) -> None:
    from napari_qpi import AutoConfig

    with pytest.raises(ValueError, match=phrase):
        AutoConfig(**kwargs)


@pytest.mark.parametrize(("kwargs", "phrase"), EDGES, ids=[f"edge-{i}" for i in
                                                            range(len(EDGES))])
def test_extract_refuses_edges(kwargs: dict, phrase: str) -> None:
    kw = {"observation": MAP, "method": "power", **kwargs}
    with pytest.raises(ValueError, match=phrase):
        extract(kw.pop("observation"), **kw)


def test_masked_array_without_masked_pixels_is_its_data() -> None:
    plain = extract(MAP, method="power")
    masked = extract(np.ma.masked_array(MAP, mask=np.zeros_like(MAP, bool)), method="power")
    np.testing.assert_array_equal(plain.kernel, masked.kernel)


def test_cpu_zero_is_the_cpu() -> None:
    assert extract(MAP, method="power", device="cpu:0").info["seconds"] > 0


def test_memory_estimate_refuses_only_what_is_too_big() -> None:
    """A physicist's grid (200 × 256²) passes; a 4096² stack of 40 energies does not."""
    assert estimate_memory((200, 256, 256), learned=True) < MEMORY_LIMIT
    assert estimate_memory((1, 2048, 2048), learned=True) < MEMORY_LIMIT
    assert estimate_memory((40, 4096, 4096), learned=False) > MEMORY_LIMIT


# --------------------------------------------------------------------------- threads

def test_thread_count_follows_the_environment(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setenv(threads.ENV, "1")
    res = extract(MAP[:32, :32], method="sbd", kernel_size=9)
    assert res.info["threads"] == 1 and torch.get_num_threads() == 1
    assert extract(MAP, method="power").info["threads"] is None  # no torch, no sampling


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_thread_count_names_the_variable(monkeypatch, value: str) -> None:
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(ValueError, match="NAPARI_QPI_THREADS=.*whole number ≥ 1"):
        extract(MAP[:32, :32], method="sbd", kernel_size=9)


def test_a_busy_machine_gets_fewer_threads(monkeypatch) -> None:
    """Another process spinning on a core reads as busy; the idle cores are what is left."""
    if threads._busy_ticks() is None:
        pytest.skip("no /proc/stat to sample")
    monkeypatch.delenv(threads.ENV, raising=False)
    spin = subprocess.Popen([sys.executable, "-c",
                             "import time\nprint(1, flush=True)\nt = time.time()\n"
                             "while time.time() - t < 20: pass"], stdout=subprocess.PIPE)
    try:
        spin.stdout.readline()
        busy = max(threads.busy_cores() for _ in range(3))
        assert busy > 0.5
        monkeypatch.setattr(threads, "_cores", lambda: 2)
        monkeypatch.setattr(threads, "busy_cores", lambda: busy)
        assert threads.choose_threads() == 1
    finally:
        spin.kill()
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    assert threads.choose_threads() == 2


def test_the_thread_count_reaches_the_large_ffts(monkeypatch) -> None:
    """The count torch gets also bounds the operator's large FFTs; a single small
    transform stays on one thread (pocketfft's threads cost more than they save)."""
    import torch

    from napari_qpi.extraction import operator

    monkeypatch.setattr(operator, "FFT_WORKERS", operator.FFT_WORKERS)
    before = torch.get_num_threads()
    monkeypatch.setenv(threads.ENV, "1")
    try:
        assert threads.use_threads(True) == 1
        assert operator.FFT_WORKERS == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.setattr(operator, "FFT_WORKERS", 2)
    assert operator._workers(160 * 160) == 1
    assert operator._workers(64 * 288 * 288) == 2


def test_cli_threads_option(monkeypatch, tmp_path) -> None:
    from napari_qpi.cli import main

    monkeypatch.setenv(threads.ENV, "")  # empty reads as unset; undone after the CLI sets it
    src, out = tmp_path / "m.npy", tmp_path / "k.npz"
    np.save(src, MAP[:32, :32])
    assert main(["extract", str(src), "--out", str(out), "--method", "sbd",
                 "--kernel-size", "9", "--threads", "1", "--quiet"]) == 0
    with np.load(out) as z:
        assert json.loads(str(z["metadata"]))["info"]["threads"] == 1


PEAK = """
import sys
import numpy as np
from napari_qpi import extract
x = np.random.default_rng(0).standard_normal((2, 256, 256))
extract(x, method=sys.argv[1], kernel_size=31)
# VmHWM belongs to this program's memory map; ru_maxrss would carry the forking
# parent's peak across exec
print(next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")).split()[1])
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux only")
@pytest.mark.parametrize("method", ["power", "two-stage"])
def test_memory_estimate_covers_what_a_fresh_process_uses(method: str) -> None:
    out = subprocess.run([sys.executable, "-c", PEAK, method], capture_output=True,
                         text=True, check=True)
    peak = float(out.stdout.split()[-1]) * 1024
    assert peak <= estimate_memory((2, 256, 256), learned=method == "two-stage")
