"""Hostile input: every reader raises QPIFormatError naming the file and the problem."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_nanonis import GRID, needs_grid, write_sxm

from napari_qpi.io import QPIFormatError, load_stack
from napari_qpi.io._common import MAX_VALUES


def _raises(path: Path, pattern: str, **kw) -> QPIFormatError:
    with pytest.raises(QPIFormatError, match=pattern) as info:
        load_stack(path, **kw)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    return info.value


@pytest.mark.parametrize("suffix", [".3ds", ".sxm", ".npy", ".npz", ".tif"])
def test_empty_file(tmp_path, suffix):
    p = tmp_path / f"empty{suffix}"
    p.write_bytes(b"")
    _raises(p, "empty|not a readable")


def test_missing_and_unknown(tmp_path):
    _raises(tmp_path / "nope.3ds", "no such file")
    _raises(tmp_path / "x.dat", "unknown file type")


# ----------------------------------------------------------------------------- .3ds

@pytest.fixture(scope="module")
def grid():
    if not GRID.is_file():
        pytest.skip(f"{GRID} not available")
    raw = GRID.read_bytes()
    end = raw.index(b":HEADER_END:")
    return raw[:end].decode("latin-1"), raw[end:]


def _write(tmp_path, name, head, body):
    p = tmp_path / name
    p.write_bytes(head.encode("latin-1") + body)
    return p


@needs_grid
def test_3ds_truncated_and_damaged(tmp_path, grid):
    head, body = grid
    _raises(_write(tmp_path, "trunc.3ds", head, body[:-4]), "data bytes")
    _raises(_write(tmp_path, "inhead.3ds", head[:200], b""), "HEADER_END")
    _raises(_write(tmp_path, "nomark.3ds", head, body.replace(b":HEADER_END:", b":HEADER_XXX:")),
            "HEADER_END")
    _raises(_write(tmp_path, "garbage.3ds", "\xff\xfe" * 50, b":HEADER_END:\r\n"), "Grid dim")
    _raises(_write(tmp_path, "extra.3ds", head, body + b"\0" * 4), "data bytes")


@needs_grid
@pytest.mark.parametrize("old, new, pattern", [
    ("Points=200", "Points=199", "bytes per pixel|data bytes"),
    ("Points=200", "Points=abc", "integers"),
    ("Experiment size (bytes)=3200", "Experiment size (bytes)=3204", "bytes per pixel"),
    ('Grid dim="30 x 30"', 'Grid dim="30 x 31"', "data bytes"),
    ('Grid dim="30 x 30"', 'Grid dim="300000 x 300000"', "more than"),
    ('Grid dim="30 x 30"', 'Grid dim="0 x 30"', "asks for 0"),
    ("# Parameters (4 byte)=10", "# Parameters (4 byte)=11", "data bytes"),
    ("# Parameters (4 byte)=10", "# Parameters (4 byte)=1", "sweep start"),
    ("5.000000E-9;5.000000E-9;4.5", "5.000000E-9;-5.000000E-9;4.5", "frame"),
    ("5.000000E-9;5.000000E-9;4.5", "5.000000E-9;nan;4.5", "not finite"),
    ('Sweep Signal="Bias (V)"', 'Sweep Signal="Z (m)"', "not a bias"),
    ("Channels=", "Chanels=", "no 'Channels'"),
])
def test_3ds_header_disagrees(tmp_path, grid, old, new, pattern):
    head, body = grid
    assert old in head
    _raises(_write(tmp_path, "edit.3ds", head.replace(old, new), body), pattern)


@needs_grid
def test_3ds_nan_channel_and_unknown_channel(tmp_path, grid):
    head, body = grid
    start = len(":HEADER_END:\r\n")
    block = np.frombuffer(body, ">f4", offset=start).reshape(30, 30, 810).copy()
    block[..., 10 + 200:10 + 400] = np.nan  # LockinX
    nan_body = body[:start] + block.tobytes()
    p = _write(tmp_path, "nan.3ds", head, nan_body)
    _raises(p, "no finite values")
    assert load_stack(p, channel="current").shape == (200, 30, 30)
    block[..., 10 + 200:10 + 400] = 1.0
    block[3, 4, 10 + 250] = np.inf
    _raises(_write(tmp_path, "inf.3ds", head, body[:start] + block.tobytes()), "1 NaN or inf")
    block[3, 4, 10 + 250] = 1.0
    block[..., 0] = np.nan  # sweep start in every pixel
    _raises(_write(tmp_path, "nostart.3ds", head, body[:start] + block.tobytes()), "sweep start")
    block[..., 0] = -0.22
    block[25:, :, 10:] = np.nan  # a grid stopped after 25 lines: those are cropped
    s = load_stack(_write(tmp_path, "partial.3ds", head, body[:start] + block.tobytes()))
    assert s.shape == (200, 25, 30) and s.metadata["rows_measured"] == 25
    _raises(GRID, "no channel matches 'dIdV'", channel="dIdV")
    _raises(GRID, "non-empty string", channel="  ")


# ----------------------------------------------------------------------------- .sxm

def _sxm(tmp_path, name="a.sxm", **kw) -> tuple[Path, bytes]:
    rng = np.random.default_rng(0)
    ch = {"Z": ("m", rng.normal(size=(4, 5)), rng.normal(size=(4, 5))),
          "LI_Demod_1_X": ("A", rng.normal(size=(4, 5)), None)}
    ch.update(kw.pop("extra", {}))
    raw = write_sxm(None, ch, **kw)
    p = tmp_path / name
    p.write_bytes(raw)
    return p, raw


def test_sxm_damaged(tmp_path):
    p, raw = _sxm(tmp_path)
    head_end = raw.index(b"\x1a\x04")
    cases = {
        "trunc": (raw[:-3], "data bytes"),
        "inhead": (raw[:head_end // 2], "SCANIT_END"),
        "nomagic": (b"hello" + raw, "NANONIS_VERSION"),
        "nodata": (raw.replace(b"\x1a\x04", b"\x00\x00"), "data marker"),
        "pixels": (raw.replace(b"       5       4", b"       5       5"), "data bytes"),
        "huge": (raw.replace(b"       5       4", b"  999999  999999"), "more than"),
        "info": (raw.replace(b"Direction", b"Dir"), "DATA_INFO"),
        "dir": (raw.replace(b"\tboth\t", b"\tsideways\t"), "DATA_INFO row"),
        "scandir": (raw.replace(b":SCAN_DIR:\nup", b":SCAN_DIR:\nleft"), "SCAN_DIR"),
        "bias": (re.sub(rb":BIAS:\n[^\n]*", b":BIAS:\nfoo", raw), "BIAS"),
        "type": (raw.replace(b"FLOAT", b"INT32"), "SCANIT_TYPE"),
    }
    for name, (data, pattern) in cases.items():
        q = tmp_path / f"{name}.sxm"
        q.write_bytes(data)
        _raises(q, pattern)


def test_sxm_nan_and_unknown_channel(tmp_path):
    p, _ = _sxm(tmp_path, extra={"LI_Demod_1_X": ("A", np.full((4, 5), np.nan), None)})
    _raises(p, "no finite values")
    assert load_stack(p, channel="Z").shape == (1, 4, 5)
    _raises(p, "no channel matches 'Phase'", channel="Phase")


# ----------------------------------------------------------------------------- .npy / .npz

def test_npy_npz_hostile(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.ones((2, 3, 4), np.float32))
    raw = buf.getvalue()
    (tmp_path / "t.npy").write_bytes(raw[:-5])
    _raises(tmp_path / "t.npy", "not a readable")
    huge = raw.replace(b"(2, 3, 4)", b"(99999999, 99999, 4)"[:len("(2, 3, 4)")])
    big = raw.replace(b"'shape': (2, 3, 4), ", b"'shape': (4000000000,),")
    (tmp_path / "h.npy").write_bytes(big)
    _raises(tmp_path / "h.npy", "more than the 1073741824 bytes this reader accepts")
    (tmp_path / "h2.npy").write_bytes(huge)
    _raises(tmp_path / "h2.npy", "more than the file holds|more than the .* bytes|damaged")
    np.save(tmp_path / "nan.npy", np.full((3, 3), np.nan))
    _raises(tmp_path / "nan.npy", "no finite values")
    np.save(tmp_path / "one.npy", np.ones(5))
    _raises(tmp_path / "one.npy", "shape")
    _raises(tmp_path / "one.npy", "one channel", channel="LockinX")
    # .npz with a lying member header, a non-object metadata, a broken zip
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as z:
        z.writestr("data.npy", big)
    _raises(tmp_path / "h.npz", "member data.npy: .npy header asks for shape")
    np.savez(tmp_path / "m.npz", data=np.ones((2, 2)), metadata=np.array("[1, 2]"))
    _raises(tmp_path / "m.npz", "not an object")
    np.savez(tmp_path / "p.npz", data=np.ones((2, 2)), pixel_size=np.ones(3))
    _raises(tmp_path / "p.npz", "pixel_size holds 3 values")
    (tmp_path / "z.npz").write_bytes((tmp_path / "m.npz").read_bytes()[:40])
    _raises(tmp_path / "z.npz", "not a readable")


def test_cap_is_at_most_a_gibibyte_of_float32():
    assert MAX_VALUES * 4 <= 2**30
