"""Issue 13's table: every bad input to extract, simulate and the readers gets one clear
error (the exception type and a phrase of its message), never garbage, never a blow-up."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
import tifffile
from test_nanonis import GRID, needs_grid, write_sxm

from napari_qpi import QPIFormatError, QPIStack, extract, load_stack, simulate
from napari_qpi.extraction.validate import check_device, validate
from napari_qpi.io import load_3ds, load_sxm, load_sxm_series
from napari_qpi.physics.simulation import MAX_GRID, _grid_for

RNG = np.random.default_rng(0)
MAP = RNG.standard_normal((2, 32, 32))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# --------------------------------------------------------------------------- extract

EXTRACT = [
    ({"observation": np.zeros((8, 128, 128))}, "observation is constant"),
    ({"observation": np.full((64, 64), 3.5)}, "observation is constant"),
    ({"observation": QPIStack(np.zeros((2, 32, 32)))}, "observation is constant"),
    ({"observation": MAP + 1j * MAP}, "complex"),
    ({"observation": RNG.standard_normal((3, 3))}, "too small"),
    ({"observation": RNG.standard_normal((2, 2))}, "too small"),
    ({"observation": RNG.standard_normal((1, 1000))}, "too small"),
    ({"observation": np.zeros((0, 128, 128))}, "empty"),
    ({"observation": np.zeros((2, 2, 32, 32))}, "shape"),
    ({"observation": None}, "observation is None"),
    ({"observation": np.array([["a", "b"]])}, "real numbers"),
    ({"observation": np.where(MAP > 2, np.nan, MAP)}, "NaN"),
    ({"method": ["wiener"]}, "method"),
    ({"pixel_size": 0}, "pixel_size"),
    ({"pixel_size": -2}, "pixel_size"),
    ({"pixel_size": np.nan}, "pixel_size"),
    ({"pixel_size": np.inf}, "pixel_size"),
    ({"pixel_size": "abc"}, "pixel_size"),
    ({"kernel_size": 4}, "odd"),
    ({"kernel_size": 31.7}, "whole number"),
    ({"kernel_size": 65}, "32×32 px, smaller than the kernel window"),
    ({"kernel_size": "big"}, "kernel_size"),
    ({"positions": (3, 3)}, r"\[\[row, col\]\]"),
    ({"positions": np.zeros((0, 2))}, "N ≥ 1"),
    ({"positions": [[40, 3]]}, "inside"),
    ({"positions": [["a", "b"]]}, "positions"),
    ({"device": "banana"}, "not a torch device"),
    ({"device": 3}, "not a torch device"),
]


@pytest.mark.parametrize(("kwargs", "phrase"), EXTRACT,
                         ids=[f"extract-{i}" for i in range(len(EXTRACT))])
def test_extract_refuses(kwargs: dict, phrase: str) -> None:
    kw = {"observation": MAP, "method": "wiener", "positions": [[5, 5], [20, 20]], **kwargs}
    with pytest.raises(ValueError, match=phrase) as info:
        extract(kw.pop("observation"), **kw)
    assert "kernel_size" not in str(info.value) or "kernel_size" in kwargs


def test_extract_cuda_on_a_cpu_build() -> None:
    if _cuda_available():
        pytest.skip("this torch sees a CUDA GPU")
    with pytest.raises(ValueError, match="no CUDA GPU.*device='cpu'"):
        extract(MAP, method="wiener", positions=[[5, 5]], device="cuda")


def test_some_constant_slices_pass_validation() -> None:
    """Only a wholly constant observation is refused; the fit leaves constant slices out."""
    obs = MAP.copy()
    obs[1] = 0.0
    obs3, pos = validate(obs, [[1, 2]])
    assert obs3.shape == (2, 32, 32) and obs3.dtype == np.float64 and pos.shape == (1, 2)
    np.testing.assert_array_equal(obs3, obs)


def test_cpu_device_check_does_not_load_torch() -> None:
    code = ("import sys; from napari_qpi.extraction.validate import check_device\n"
            "assert check_device(None) == 'cpu' and check_device('CPU') == 'cpu'\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    assert check_device("cpu") == "cpu"


# --------------------------------------------------------------------------- simulate

SIMULATE = [
    ({"tip_blur": np.nan}, "tip_blur"),
    ({"tip_blur": -1}, "tip_blur"),
    ({"background": np.nan}, "background"),
    ({"streaks": -1}, "streaks"),
    ({"streaks": np.inf}, "streaks"),
    ({"snr": np.nan}, "snr"),
    ({"snr": "abc"}, "snr"),
    ({"n_scatterers": 2.5}, "n_scatterers must be a whole number"),
    ({"n_scatterers": 100000}, "more than the 1024 pixels"),
    ({"n_scatterers": True}, "n_scatterers"),
    ({"shape": (64.7, 64.2)}, "shape"),
    ({"shape": 128}, r"pair \(H, W\)"),
    ({"shape": "128"}, r"pair \(H, W\)"),
    ({"positions": [[10.9, 10.9]]}, "whole pixel"),
    ({"positions": (3, 3)}, r"\[\[row, col\]\]"),
    ({"positions": []}, "N ≥ 1"),
    ({"kernel_size": 31.7}, "kernel_size must be a whole number"),
    ({"kernel_size": 1001}, "larger than the 32×32 map"),
    ({"kernel_size": 4097}, "larger than the 32×32 map"),
    ({"seed": "abc"}, "seed"),
    ({"seed": -1}, "seed must be ≥ 0"),
    ({"energies": []}, "energies"),
    ({"energies": ["a"]}, "energies"),
    ({"defects": []}, "defects"),
    ({"defects": [1.0]}, "defects"),
    ({"pixel_size": "abc"}, "pixel_size"),
    ({"family": 3}, "family"),
    ({"noise": None}, "noise"),
]


@pytest.mark.parametrize(("kwargs", "phrase"), SIMULATE,
                         ids=[f"simulate-{i}" for i in range(len(SIMULATE))])
def test_simulate_refuses(kwargs: dict, phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        simulate(**{"shape": (32, 32), "kernel_size": 17, "energies": [0.0], **kwargs})


def test_simulate_integral_floats_are_integers() -> None:
    a = simulate(shape=(32.0, 32), kernel_size=17.0, n_scatterers=3.0, seed=1.0,
                 energies=[0.0])
    b = simulate(shape=(32, 32), kernel_size=17, n_scatterers=3, seed=1, energies=[0.0])
    np.testing.assert_array_equal(a.observation, b.observation)
    assert a.kernel.shape == (1, 17, 17)


def test_grid_cap_is_real() -> None:
    """A large window no longer bypasses the 1024-px grid (it asked for 4 × window)."""
    with pytest.warns(UserWarning, match="kernel_size=301 asks for a 1204 px grid"):
        assert _grid_for((512, 512), 301, 10.0) == MAX_GRID
    with pytest.warns(UserWarning, match="decay length"):
        assert _grid_for((64, 64), 33, 1000.0) == MAX_GRID
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _grid_for((64, 64), 33, 10.0) <= 256  # uncapped grids unchanged


# --------------------------------------------------------------------------- readers

def _npz(path, **members) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, value in members.items():
            if isinstance(value, bytes):
                z.writestr(f"{name}.npy", value)
            else:
                buf = io.BytesIO()
                np.save(buf, value)
                z.writestr(f"{name}.npy", buf.getvalue())


def _npy_header_only(shape: tuple, descr: str) -> bytes:
    """An .npy header that declares ``shape`` of ``descr``, followed by 64 bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(64)


def _sxm_bytes(**kw) -> bytes:
    rng = np.random.default_rng(1)
    return write_sxm(None, {"LI_Demod_1_X": ("A", rng.normal(size=(8, 8)), None)}, **kw)


def _bad_files(tmp_path):
    """name → (writer, phrase); each writer makes one bad file."""
    data = RNG.standard_normal((2, 16, 16))
    return {
        "rgb.tif": (lambda p: tifffile.imwrite(p, RNG.integers(0, 255, (32, 32, 3), np.uint8),
                                               photometric="rgb"), "one channel"),
        "rgba.tif": (lambda p: tifffile.imwrite(p, RNG.integers(0, 255, (32, 32, 4), np.uint8),
                                                photometric="rgb", extrasamples=["unassalpha"]),
                     "one channel"),
        "rgb.npy": (lambda p: np.save(p, RNG.integers(0, 255, (32, 32, 3), np.uint8)),
                    "RGB"),
        "nan_energy.npz": (lambda p: _npz(p, data=data, energies=np.array([np.nan, 1.0])),
                           "not all finite"),
        "same_energy.npz": (lambda p: _npz(p, data=data, energies=np.array([1.0, 1.0])),
                            "repeat"),
        "overflow.npz": (lambda p: _npz(p, data=np.full((2, 16, 16), 1e300)), "float32"),
        "inf.npy": (lambda p: np.save(p, np.where(data > 2, np.inf, data)), "infinite"),
        "complex.npz": (lambda p: _npz(p, data=data + 1j), "complex"),
        "pickle.npz": (lambda p: _npz(p, data=_npy_header_only((2,), "|O")), "Python objects"),
        "huge.npz": (lambda p: _npz(p, data=_npy_header_only((4, 8192, 8192), "<f8")),
                     "more than the 1073741824 bytes"),
        "huge_complex.npz": (lambda p: _npz(p, data=_npy_header_only((2**27,), "<c16")),
                             "more than|complex"),
        "many_energies.npz": (lambda p: _npz(p, data=data,
                                             energies=_npy_header_only((2**28,), "<f8")),
                              "more than|energies"),
        "wrong_energies.npz": (lambda p: _npz(p, data=data, energies=np.arange(5.0)),
                               "energies has shape"),
        "no_pixel.npz": (lambda p: _npz(p, data=data, pixel_size=np.float64(np.inf)),
                         "pixel size of inf"),
        "bias.sxm": (lambda p: p.write_bytes(_sxm_bytes(bias=1e306)), "BIAS gives energies"),
        "range.sxm": (lambda p: p.write_bytes(re.sub(
            rb":SCAN_RANGE:\n[^\n]*", b":SCAN_RANGE:\n1e300 1e300", _sxm_bytes())),
            "SCAN_RANGE gives a pixel size of inf"),
        "tiny_range.sxm": (lambda p: p.write_bytes(_sxm_bytes(scan_range=(1e-30, 1e-30))),
                           "outside"),
    }


BAD_FILES = ["rgb.tif", "rgba.tif", "rgb.npy", "nan_energy.npz", "same_energy.npz",
             "overflow.npz", "inf.npy", "complex.npz", "pickle.npz", "huge.npz",
             "huge_complex.npz", "many_energies.npz", "wrong_energies.npz", "no_pixel.npz",
             "bias.sxm", "range.sxm", "tiny_range.sxm"]


@pytest.mark.parametrize("name", BAD_FILES)
def test_reader_refuses_naming_the_file(tmp_path, name: str) -> None:
    write, phrase = _bad_files(tmp_path)[name]
    path = tmp_path / name
    write(path)
    tracemalloc.start()
    try:
        with pytest.raises(QPIFormatError, match=phrase) as info:
            load_stack(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    # refused from the headers, before the declared data is allocated
    assert peak < 16 * 2**20 + 8 * path.stat().st_size, f"peak {peak / 2**20:.1f} MiB"


@needs_grid
def test_3ds_absurd_frame_names_the_file(tmp_path) -> None:
    raw = GRID.read_bytes()
    head_end = raw.index(b":HEADER_END:")
    head = raw[:head_end].decode("latin-1")
    new = re.sub(r"Grid settings=([^;]*);([^;]*);[^;]*;[^;]*;", r"Grid settings=\1;\2;1E300;1E300;",
                 head)
    assert new != head
    path = tmp_path / "frame.3ds"
    path.write_bytes(new.encode("latin-1") + raw[head_end:])
    with pytest.raises(QPIFormatError, match="Grid settings gives a pixel size of inf") as info:
        load_stack(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("bad", [None, 3, b"x.npz", ""])
def test_load_stack_refuses_non_paths(bad) -> None:
    with pytest.raises(QPIFormatError, match="path must be a file name"):
        load_stack(bad)


def test_npy_and_tif_pixel_size_is_unknown(tmp_path) -> None:
    np.save(tmp_path / "a.npy", MAP)
    tifffile.imwrite(tmp_path / "a.tif", MAP.astype(np.float32))
    assert load_stack(tmp_path / "a.npy").pixel_size is None
    assert load_stack(tmp_path / "a.tif").pixel_size is None


def test_greyscale_tif_stack_still_loads(tmp_path) -> None:
    """The RGB refusal reads the TIFF tags: an (E, Y, 3)-free greyscale stack loads."""
    data = RNG.standard_normal((3, 16, 16)).astype(np.float32)
    tifffile.imwrite(tmp_path / "g.tif", data, photometric="minisblack")
    np.testing.assert_array_equal(load_stack(tmp_path / "g.tif").data, data)


@pytest.mark.parametrize("call", [
    lambda: load_3ds(None), lambda: load_sxm(3.0), lambda: load_sxm_series([None, "a.sxm"]),
    lambda: load_sxm_series(None), lambda: load_stack([None, "a.sxm"]),
])
def test_instrument_readers_refuse_non_paths(call) -> None:
    with pytest.raises(QPIFormatError, match="file name|list of .sxm"):
        call()


PREPROCESS = [
    ("suppress_streaks", {"threshold": "a"}, "threshold"),
    ("suppress_streaks", {"min_length": 2.5}, "min_length"),
    ("remove_bragg_peaks", {"n_peaks": -1}, "n_peaks"),
    ("remove_bragg_peaks", {"radius": np.nan}, "radius"),
    ("remove_bragg_peaks", {"method": "fft"}, "method"),
    ("crop", {"y": 5}, r"\(start, stop\)"),
    ("crop", {"x": (0, "a")}, "x must be an integer"),
    ("crop", {"x": (10, 5)}, "start < stop"),
    ("normalize_slices", {"method": None}, "method"),
    ("flatten_lines", {"method": 3}, "method"),
]


@pytest.mark.parametrize(("name", "kwargs", "phrase"), PREPROCESS)
def test_preprocess_refuses(name: str, kwargs: dict, phrase: str) -> None:
    from napari_qpi.io import preprocess

    with pytest.raises(ValueError, match=phrase):
        getattr(preprocess, name)(MAP, **kwargs)


@pytest.mark.parametrize("data", [[[1, 2], [3]], np.zeros((0, 4)), None])
def test_preprocess_refuses_non_maps(data) -> None:
    from napari_qpi.io.preprocess import subtract_plane

    with pytest.raises(ValueError, match="data"):
        subtract_plane(data)
