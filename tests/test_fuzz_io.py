"""Seeded mutations of real and written files: only QPIFormatError may escape, and no
load allocates more than a stated multiple of what the file declares.

Memory bound, per load, measured with tracemalloc: peak ≤ ``MEMORY_FACTOR`` × the file's
declared size + ``MEMORY_SLACK``. The declared size is the file's length for ``.3ds``,
``.sxm`` and ``.npy``, and the file's length plus the uncompressed sizes its zip directory
declares for ``.npz`` (what the reader may at most read; anything more is refused from
the headers before allocation). A valid file needs its data read once plus its float32
copy: up to 5× the data bytes for 1-byte dtypes, which ``MEMORY_FACTOR`` covers.
"""

from __future__ import annotations

import io
import re
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from test_nanonis import GRID, needs_grid, write_sxm

from napari_qpi.io import QPIFormatError, QPIStack, load_stack
from napari_qpi.io.nanonis import parse_3ds
from napari_qpi.io.sxm import parse_sxm

_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:E[+-]?\d+)?", re.IGNORECASE)
_REPLACEMENTS = [b"0", b"-1", b"1", b"2", b"199", b"201", b"31", b"29", b"nan", b"inf",
                 b"1e30", b"99999999999", b"4294967297", b"x", b"", b"3.5", b"-0.22"]


def mutate(raw: bytes, header_end: int, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random damage to ``raw``; header bytes are ``raw[:header_end]``."""
    kind = ("truncate", "flip_header", "overwrite_data", "edit_number", "splice")[
        rng.integers(5)]
    b = bytearray(raw)
    if kind == "truncate":
        cut = int(rng.integers(0, len(raw))) if rng.random() < 0.7 else \
            int(rng.integers(0, header_end + 20))
        return kind, bytes(b[:cut])
    if kind == "overwrite_data":
        span = len(raw) - header_end
        for _ in range(int(rng.integers(1, 8))):
            at = header_end + int(rng.integers(0, span))
            n = int(rng.integers(1, 64))
            fill = rng.choice([b"\xff", b"\x7f\xc0\x00\x00", b"\x7f\x80\x00\x00", b"\x00",
                               bytes(rng.integers(0, 256, size=4, dtype=np.uint8))])
            b[at:at + n] = (fill * n)[:n]
        return kind, bytes(b[:len(raw)])
    numbers = list(_NUMBER.finditer(raw, 0, header_end))
    if kind == "edit_number" and numbers:
        m = numbers[int(rng.integers(len(numbers)))]
        new = _REPLACEMENTS[int(rng.integers(len(_REPLACEMENTS)))]
        return kind, raw[:m.start()] + new + raw[m.end():]
    if kind in ("flip_header", "edit_number"):  # edit_number without numbers: flip
        for i in rng.integers(0, header_end, size=rng.integers(1, 6)):
            b[i] ^= 1 << int(rng.integers(8))
        return kind, bytes(b)
    at, n = int(rng.integers(0, len(raw))), int(rng.integers(1, 200))
    if rng.random() < 0.5:  # insert a copy of n bytes
        return kind, raw[:at] + raw[at:at + n] + raw[at:]
    return kind, raw[:at] + raw[at + n:]  # or cut them out


MEMORY_FACTOR = 6
MEMORY_SLACK = 2**20


def _check(result, all_finite: bool) -> None:
    assert isinstance(result, QPIStack)
    assert result.data.ndim == 3 and np.isfinite(result.data).any()
    assert not all_finite or np.isfinite(result.data).all()
    assert np.isfinite(result.energies).all()
    assert np.unique(result.energies).size == result.energies.size
    assert result.pixel_size is None or 0 < result.pixel_size < np.inf


def declared_size(raw: bytes) -> int:
    """Length of ``raw``, plus the uncompressed member sizes of a zip's directory."""
    size = len(raw)
    for m in re.finditer(rb"PK\x01\x02", raw):
        if m.start() + 46 <= len(raw):
            size += struct.unpack_from("<L", raw, m.start() + 24)[0]
    return size


def fuzz(parse, cases, all_finite=True) -> dict:
    """Parse every ``(kind, bytes)`` case; count outcomes; fail on any other exception
    or on a load whose peak allocation exceeds the bound."""
    seen: dict[str, int] = {}
    worst = biggest = 0
    tracemalloc.start()
    try:
        for i, (kind, bad) in enumerate(cases):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            try:
                _check(parse(bad), all_finite)
                outcome = "read"
            except QPIFormatError as exc:
                assert "fuzz" in str(exc), exc  # the message names the file
                outcome = "refused"
            except Exception as exc:  # pragma: no cover - this is the failure being hunted
                pytest.fail(f"case {i} ({kind}) raised {type(exc).__name__}: {exc}")
            peak = tracemalloc.get_traced_memory()[1] - base
            bound = MEMORY_FACTOR * declared_size(bad) + MEMORY_SLACK
            assert peak <= bound, f"case {i} ({kind}): peak {peak} bytes > bound {bound}"
            excess = (peak - MEMORY_SLACK) / max(declared_size(bad), 1)
            worst, biggest = max(worst, excess), max(biggest, peak)
            seen[f"{kind}:{outcome}"] = seen.get(f"{kind}:{outcome}", 0) + 1
    finally:
        tracemalloc.stop()
    # worst (peak − slack) / declared size, and the largest peak, for the record
    seen["excess_per_declared_x100"], seen["peak_bytes"] = int(100 * worst), biggest
    return seen


def _count(seen: dict, outcome: str) -> int:
    return sum(v for k, v in seen.items() if k.endswith(outcome))


def byte_mutations(raw: bytes, header_end: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    return [mutate(raw, header_end, rng) for _ in range(n)]


@pytest.mark.slow
@needs_grid
def test_fuzz_3ds_600_mutations():
    raw = GRID.read_bytes()
    header_end = raw.index(b":HEADER_END:") + 14
    channels = [None, "current", "lockiny"]
    seen = fuzz(lambda b: parse_3ds(b, "fuzz.3ds", channels[len(b) % 3]),
                byte_mutations(raw, header_end, 600, seed=20261125))
    assert _count(seen, "refused") > 100 and _count(seen, "read") > 20, seen


def test_fuzz_sxm_600_mutations():
    rng = np.random.default_rng(7)
    ch = {"Z": ("m", rng.normal(size=(16, 20)), rng.normal(size=(16, 20))),
          "LI_Demod_1_X": ("A", rng.normal(size=(16, 20)), rng.normal(size=(16, 20)))}
    raw = write_sxm(None, ch, bias=0.05)
    header_end = raw.index(b"\x1a\x04") + 2
    seen = fuzz(lambda b: parse_sxm(b, "fuzz.sxm", [None, "z", "Z [bwd]"][len(b) % 3]),
                byte_mutations(raw, header_end, 600, seed=11))
    assert _count(seen, "refused") > 100 and _count(seen, "read") > 20, seen


# ------------------------------------------------------------------ .npz: structural edits

_SHAPES = ["()", "(0,)", "(2, 64, 64)", "(64, 64)", "(3, 64, 64)", "(2, 64, 64, 1)",
           "(10**12,)", "(268435456,)", "(16384, 16384)", "(-1, 8)", "('a',)", "(2, 64, 65)",
           "(1, 64, 64)", "(2, 64, 3)", "(99999999999999999999,)", "(4, 64, 64)"]
_DESCRS = ["'<f4'", "'>f8'", "'<c8'", "'<c16'", "'|O'", "'<U3'", "'|b1'", "'<i8'", "'|V4'",
           "[('a', '<f4')]", "'<m8'", "'<f2'", "'u1'", "'<g'", "'nonsense'", "3"]
_METADATA = ['[1, 2]', '{', '"text"', '{"a": NaN}', '{"a": 1}', '', "x" * 5000]


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _with_header(member: bytes, header: str, version: bytes = b"\x01\x00") -> bytes:
    """``member``'s data behind a hand-written (possibly invalid) .npy header."""
    old_len = struct.unpack_from("<H", member, 8)[0]
    body = member[10 + old_len:]
    text = header.encode("latin-1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY" + version + struct.pack("<H", len(text)) + text + body


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, blob in members:
            z.writestr(name, blob)
    return buf.getvalue()


def _patch_directory(raw: bytes, offset: int, value: int, rng) -> bytes:
    """Overwrite one little-endian uint32 field of a random central-directory record."""
    records = [m.start() for m in re.finditer(rb"PK\x01\x02", raw)]
    at = records[int(rng.integers(len(records)))] + offset
    b = bytearray(raw)
    b[at:at + 4] = struct.pack("<L", value % 2**32)
    return bytes(b)


def npz_mutations(n: int, seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    base = {"data": _npy(rng.normal(size=(2, 64, 64))),  # float64: converted on load
            "energies": _npy(np.array([-5.0, 5.0])), "pixel_size": _npy(np.float64(2.5)),
            "metadata": _npy(np.array('{"source": "fuzz"}'))}
    out = []
    for _ in range(n):
        members = dict(base)
        method = zipfile.ZIP_DEFLATED
        kind = ("header", "version", "header_len", "body", "energies", "metadata",
                "members", "method", "directory", "bytes")[rng.integers(10)]
        name = list(members)[int(rng.integers(4))]
        if kind == "header":
            fortran = ["False", "True", "1", "'x'"][int(rng.integers(4))]
            members[name] = _with_header(
                members[name], "{'descr': " + _DESCRS[int(rng.integers(len(_DESCRS)))] +
                ", 'fortran_order': " + fortran + ", 'shape': " +
                _SHAPES[int(rng.integers(len(_SHAPES)))] + ", }")
        elif kind == "version":
            b = bytearray(members[name])
            b[6:8] = [(1, 0), (2, 0), (3, 0), (9, 9), (0, 0)][int(rng.integers(5))]
            members[name] = bytes(b)
        elif kind == "header_len":
            b = bytearray(members[name])
            b[8:10] = struct.pack("<H", int(rng.integers(0, 2**16)))
            members[name] = bytes(b)
        elif kind == "body":
            cut = int(rng.integers(-40, 40))
            members[name] = members[name][:cut] if cut < 0 else members[name] + bytes(cut)
        elif kind == "energies":
            members["energies"] = _npy([np.array([np.nan, 1.0]), np.array([1.0, 1.0]),
                                        np.array([5.0, -5.0]), np.arange(3.0),
                                        np.ones((2, 1)), np.array([np.inf, 0.0]),
                                        np.array(["a", "b"])][int(rng.integers(7))])
        elif kind == "metadata":
            members["metadata"] = _npy(np.array(_METADATA[int(rng.integers(len(_METADATA)))]))
        elif kind == "members":
            op = int(rng.integers(3))
            if op == 0:
                del members[name]
            elif op == 1:
                members[["dat", "DATA", "data.npy", "dir/data"][int(rng.integers(4))]] = \
                    members.pop(name)
            else:
                members[name + "2"] = members[name]
        elif kind == "method":
            method = [zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA][
                int(rng.integers(3))]
        raw = _zip([(f"{k}.npy", v) for k, v in members.items()], method)
        if kind == "directory":  # lie about CRC, compressed or uncompressed size
            field = [16, 20, 24][int(rng.integers(3))]
            value = [0, 1, 64, 2**20, 2**31, 2**32 - 1][int(rng.integers(6))]
            raw = _patch_directory(raw, field, value, rng)
        elif kind == "bytes":
            raw = mutate(raw, 64, rng)[1]
        out.append((kind, raw))
    return out


@pytest.mark.slow
def test_fuzz_npz_600_structural_mutations(tmp_path):
    path = tmp_path / "fuzz.npz"

    def parse(b: bytes):
        path.write_bytes(b)
        return load_stack(path)

    # reinterpreted bytes may hold NaN: allowed in array files as missing pixels
    seen = fuzz(parse, npz_mutations(600, seed=5), all_finite=False)
    assert _count(seen, "refused") > 200 and _count(seen, "read") > 30, seen


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_fuzz_numpy_files_byte_mutations(tmp_path, suffix):
    buf = io.BytesIO()
    if suffix == ".npy":
        np.save(buf, np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8))
    else:
        QPIStack(np.ones((2, 8, 8)), [1.0, 2.0], 2.5, {"a": 1}).save(tmp_path / "s.npz")
        buf.write((tmp_path / "s.npz").read_bytes())
    raw = buf.getvalue()
    header_end = 128 if suffix == ".npy" else 64
    path = tmp_path / f"fuzz{suffix}"

    def parse(b: bytes):
        path.write_bytes(b)
        return load_stack(path)

    # plain arrays may hold some NaN (masked pixels), never none finite
    seen = fuzz(parse, byte_mutations(raw, header_end, 200, seed=3), all_finite=False)
    assert _count(seen, "refused") > 20, seen


def test_fuzz_npz_lying_sizes(tmp_path):
    """A zip member whose .npy header claims a huge shape is refused before allocating."""
    member = io.BytesIO()
    np.save(member, np.ones(4, np.float32))
    raw = member.getvalue().replace(b"'shape': (4,), ", b"'shape': (999999999999,),")
    p = tmp_path / "lie.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("data.npy", raw)
    with pytest.raises(QPIFormatError, match="more than"):
        load_stack(p)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("writer", ["npy", "savez", "savez_compressed"])
def test_valid_megabyte_files_stay_within_the_memory_bound(tmp_path, dtype, writer):
    """The bound is exercised by real sizes, not only by the fuzz's small files."""
    data = np.random.default_rng(0).integers(-100, 100, (4, 256, 512)).astype(dtype)
    path = tmp_path / f"big.{'npy' if writer == 'npy' else 'npz'}"
    if writer == "npy":
        np.save(path, data)
    else:
        getattr(np, writer)(path, data=data, energies=np.arange(4.0))
    raw = path.read_bytes()
    named = path.with_name("fuzz" + path.suffix)  # fuzz() checks the message names "fuzz"
    named.write_bytes(raw)
    seen = fuzz(lambda b: load_stack(named), [("valid", raw)], all_finite=False)
    assert seen["valid:read"] == 1, seen
