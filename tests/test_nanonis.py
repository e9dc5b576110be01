"""Nanonis readers: the real ``.3ds`` grid and round trips through a test-only ``.sxm`` writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_qpi.io import QPIFormatError, load_stack
from napari_qpi.io.nanonis import load_3ds
from napari_qpi.io.sxm import load_sxm, load_sxm_series

GRID = Path(__file__).parents[2] / "shared" / "data" / "nanonis" / \
    "NanonisReader_STS_grid_lockin.3ds"
needs_grid = pytest.mark.skipif(not GRID.is_file(), reason=f"{GRID} not available")


# ----------------------------------------------------------------------------- .3ds

@needs_grid
def test_3ds_header_numbers_and_axes():
    s = load_stack(GRID)
    m = s.metadata
    assert s.shape == (200, 30, 30)
    assert m["grid_dim"] == [30, 30]
    assert m["channels"] == ["Current (A)", "LockinX (V)", "LockinY (V)", "Bias_m (V)"]
    assert m["channel"] == "LockinX (V)"
    assert m["sweep_signal"] == "Bias (V)"
    assert m["frame_size_m"] == pytest.approx([5e-9, 5e-9])
    assert m["frame_center_m"] == pytest.approx([8.451877e-8, 6.329924e-7])
    assert m["frame_angle_deg"] == pytest.approx(45.0)
    assert s.pixel_size == pytest.approx(50 / 30, rel=1e-9)
    assert m["header"]["Date"] == "04.06.2016 20:13:23"
    assert m["header"]["Points"] == "200"
    json.dumps(m)  # JSON-serialisable as it is


@needs_grid
def test_3ds_bias_axis_from_parameters():
    s = load_3ds(GRID)
    e = s.energies
    assert e.shape == (200,)
    assert np.all(np.diff(e) > 0)
    assert e[0] == pytest.approx(-220.0, abs=1e-4) and e[-1] == pytest.approx(220.0, abs=1e-4)
    assert np.allclose(np.diff(e), 440.0 / 199)
    assert s.data.dtype == np.float32 and np.isfinite(s.data).all()


@needs_grid
def test_3ds_values_match_raw_layout():
    raw = GRID.read_bytes()
    start = raw.index(b":HEADER_END:") + len(b":HEADER_END:\r\n")
    block = np.frombuffer(raw, ">f4", offset=start).reshape(30, 30, 10 + 4 * 200)
    lockin = block[..., 10 + 200:10 + 400]  # second channel, (Y, X, E)
    s = load_3ds(GRID, channel="lockinx")
    np.testing.assert_array_equal(s.data, np.moveaxis(lockin, -1, 0))
    # the scan's fast axis is the last array axis: X (m) changes from column to column
    x = block[..., 2]
    assert abs(x[0, 1] - x[0, 0]) == pytest.approx(50e-10 / 30 / np.sqrt(2), rel=1e-3)


@needs_grid
def test_3ds_channel_selection():
    cur = load_stack(GRID, channel="Current (A)")
    assert cur.metadata["channel"] == "Current (A)"
    assert 1e-12 < np.abs(cur.data).mean() < 1e-9  # amperes
    assert load_stack(GRID, channel="LOCKINY").metadata["channel"] == "LockinY (V)"
    assert load_stack(GRID, channel="bias_m").metadata["channel"] == "Bias_m (V)"
    with pytest.raises(QPIFormatError, match="no channel matches 'Phase'"):
        load_stack(GRID, channel="Phase")
    with pytest.raises(QPIFormatError, match="ambiguous"):
        load_stack(GRID, channel="lockin")


@needs_grid
def test_3ds_numerical_didv_fallback_and_bwd_average(tmp_path):
    raw = GRID.read_bytes()
    end = raw.index(b":HEADER_END:")
    head, body = raw[:end].decode("latin-1"), raw[end:]
    # no lock-in: fall back to dI/dV of the current
    no_lockin = head.replace("LockinX (V);LockinY (V)", "Sig1 (V);Sig2 (V)")
    p = tmp_path / "nolockin.3ds"
    p.write_bytes(no_lockin.encode("latin-1") + body)
    s = load_3ds(p)
    assert s.metadata["channel"] == "Current (A)"
    assert s.metadata["derived"].startswith("numerical dI/dV")
    cur = load_3ds(GRID, channel="current")
    expect = np.gradient(cur.data.astype(np.float64), cur.energies / 1000.0, axis=0)
    np.testing.assert_allclose(s.data, expect, rtol=1e-4, atol=1e-6 * np.abs(expect).max())
    # a [bwd] channel is averaged with its forward sweep
    with_bwd = head.replace("LockinY (V)", "LockinX [bwd] (V)")
    p = tmp_path / "bwd.3ds"
    p.write_bytes(with_bwd.encode("latin-1") + body)
    s = load_3ds(p)
    x, y = load_3ds(GRID, "lockinx").data, load_3ds(GRID, "lockiny").data
    np.testing.assert_allclose(s.data, 0.5 * (x + y), rtol=1e-6)
    assert s.metadata["derived"] == "mean of forward and backward sweeps"
    np.testing.assert_array_equal(load_3ds(p, "LockinX [bwd] (V)").data, y)


# ----------------------------------------------------------------------------- .sxm

def write_sxm(path: Path | None, channels: dict[str, tuple[str, np.ndarray, np.ndarray | None]],
              *, bias: float = 0.1, scan_range=(5e-9, 4e-9), offset=(1e-8, 2e-8),
              angle: float = 0.0, scan_dir: str = "up") -> bytes:
    """Write ``.sxm`` bytes as Nanonis lays them out (test helper, not library code).

    ``channels`` maps name → (unit, forward image as stored, backward image as stored or
    None). Images are (ny, nx) in file order: first stored line first, backward lines
    as acquired (right to left).
    """
    fwd0 = next(iter(channels.values()))[1]
    ny, nx = fwd0.shape
    rows = ["\tChannel\tName\tUnit\tDirection\tCalibration\tOffset"]
    for i, (name, (unit, _, bwd)) in enumerate(channels.items()):
        rows.append(f"\t{i}\t{name}\t{unit}\t{'both' if bwd is not None else 'forward'}"
                    "\t1.000E+0\t0.000E+0")
    fields = {
        "NANONIS_VERSION": "2", "SCANIT_TYPE": "              FLOAT            MSBFIRST",
        "REC_DATE": " 21.11.2015", "REC_TIME": "13:48:16", "ACQ_TIME": "       327.7",
        "SCAN_PIXELS": f"       {nx}       {ny}",
        "SCAN_RANGE": f"           {scan_range[0]:E}           {scan_range[1]:E}",
        "SCAN_OFFSET": f"             {offset[0]:E}         {offset[1]:E}",
        "SCAN_ANGLE": f"            {angle:E}", "SCAN_DIR": scan_dir,
        "BIAS": f"            {bias:E}",
        "Z-CONTROLLER": "\tName\ton\tSetpoint\n\tlog Current\t1\t1.000E-10 A",
        "COMMENT": "", "DATA_INFO": "\n".join(rows) + "\n",
    }
    text = "".join(f":{k}:\n{v}\n" for k, v in fields.items()) + ":SCANIT_END:\n\n\n"
    blobs = []
    for _, fwd, bwd in channels.values():
        blobs.append(np.asarray(fwd, ">f4").tobytes())
        if bwd is not None:
            blobs.append(np.asarray(bwd, ">f4").tobytes())
    raw = text.encode("latin-1") + b"\x1a\x04" + b"".join(blobs)
    if path is not None:
        Path(path).write_bytes(raw)
    return raw


def _images(rng, ny=6, nx=8):
    return {"Z": ("m", rng.normal(size=(ny, nx)), rng.normal(size=(ny, nx))),
            "Current": ("A", rng.normal(size=(ny, nx)), None),
            "LI_Demod_1_X": ("A", rng.normal(size=(ny, nx)), rng.normal(size=(ny, nx))),
            "LI_Demod_1_Y": ("A", rng.normal(size=(ny, nx)), rng.normal(size=(ny, nx)))}


def test_sxm_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    ch = _images(rng)
    p = tmp_path / "a.sxm"
    write_sxm(p, ch, bias=-0.05)
    s = load_stack(p)
    assert s.shape == (1, 6, 8)
    assert s.metadata["channel"] == "LI_Demod_1_X"
    np.testing.assert_array_equal(s.data[0], ch["LI_Demod_1_X"][1].astype(np.float32))
    assert s.energies[0] == pytest.approx(-50.0)
    assert s.pixel_size == pytest.approx(50 / 8)
    assert s.metadata["pixel_size_y_A"] == pytest.approx(40 / 6)
    assert s.metadata["frame_center_m"] == pytest.approx([1e-8, 2e-8])
    assert s.metadata["header"]["REC_DATE"] == "21.11.2015"
    json.dumps(s.metadata)
    # channel choice: name, substring with spaces for underscores, backward image flipped
    np.testing.assert_array_equal(load_sxm(p, "z").data[0], ch["Z"][1].astype(np.float32))
    np.testing.assert_array_equal(load_sxm(p, "demod 1 y").data[0],
                                  ch["LI_Demod_1_Y"][1].astype(np.float32))
    np.testing.assert_array_equal(load_sxm(p, "Z [bwd]").data[0],
                                  ch["Z"][2][:, ::-1].astype(np.float32))
    np.testing.assert_array_equal(load_sxm(p, "current").data[0],
                                  ch["Current"][1].astype(np.float32))
    with pytest.raises(QPIFormatError, match="no channel matches"):
        load_sxm(p, "Phase")
    with pytest.raises(QPIFormatError, match="ambiguous"):
        load_sxm(p, "demod")


def test_sxm_scan_down_is_flipped_and_no_lockin_default(tmp_path):
    rng = np.random.default_rng(1)
    ch = {"Z": ("m", rng.normal(size=(5, 7)), None)}
    p = tmp_path / "down.sxm"
    write_sxm(p, ch, scan_dir="down")
    np.testing.assert_array_equal(load_sxm(p, "Z").data[0], ch["Z"][1][::-1].astype(np.float32))
    with pytest.raises(QPIFormatError, match="no lock-in"):
        load_sxm(p)


def test_sxm_series_sorted_by_bias(tmp_path):
    rng = np.random.default_rng(2)
    biases = [0.02, -0.01, 0.005]
    chans = [_images(rng) for _ in biases]
    paths = []
    for i, (b, ch) in enumerate(zip(biases, chans)):
        paths.append(tmp_path / f"m{i}.sxm")
        write_sxm(paths[-1], ch, bias=b)
    s = load_stack(paths)
    assert s.shape == (3, 6, 8)
    np.testing.assert_allclose(s.energies, [-10.0, 5.0, 20.0])
    for k, i in enumerate(np.argsort(biases)):
        np.testing.assert_array_equal(s.data[k], chans[i]["LI_Demod_1_X"][1].astype(np.float32))
    assert [Path(f["path"]).name for f in s.metadata["files"]] == ["m1.sxm", "m2.sxm", "m0.sxm"]
    json.dumps(s.metadata)
    assert load_sxm_series(paths, channel="Z").metadata["channel"] == "Z"


def test_sxm_series_refuses_different_frames_and_duplicate_bias(tmp_path):
    rng = np.random.default_rng(3)
    a, b, c, d = (tmp_path / f"{n}.sxm" for n in "abcd")
    write_sxm(a, _images(rng), bias=0.1)
    write_sxm(b, _images(rng), bias=0.2, offset=(1e-8, 3e-8))
    write_sxm(c, _images(rng, ny=5), bias=0.3)
    write_sxm(d, _images(rng), bias=0.1)
    with pytest.raises(QPIFormatError, match="offset"):
        load_stack([a, b])
    with pytest.raises(QPIFormatError, match="pixels"):
        load_stack([a, c])
    with pytest.raises(QPIFormatError, match="share the bias"):
        load_stack([a, d])
    with pytest.raises(QPIFormatError, match=r"only \.sxm"):
        load_stack([a, tmp_path / "x.npy"])
