"""Seeded mutations of real and written files: only QPIFormatError may escape, quickly."""

from __future__ import annotations

import io
import re
import time
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


def _check(result, all_finite: bool) -> None:
    assert isinstance(result, QPIStack)
    assert result.data.ndim == 3 and np.isfinite(result.data).any()
    assert not all_finite or np.isfinite(result.data).all()
    assert np.isfinite(result.energies).all()


def fuzz(parse, raw: bytes, header_end: int, n: int, seed: int, all_finite=True) -> dict:
    rng = np.random.default_rng(seed)
    seen: dict[str, int] = {}
    for i in range(n):
        kind, bad = mutate(raw, header_end, rng)
        try:
            _check(parse(bad), all_finite)
            outcome = "read"
        except QPIFormatError as exc:
            assert "fuzz" in str(exc), exc  # the message names the file
            outcome = "refused"
        except Exception as exc:  # pragma: no cover - this is the failure being hunted
            pytest.fail(f"case {i} ({kind}) raised {type(exc).__name__}: {exc}")
        seen[f"{kind}:{outcome}"] = seen.get(f"{kind}:{outcome}", 0) + 1
    return seen


@needs_grid
def test_fuzz_3ds_600_mutations():
    raw = GRID.read_bytes()
    header_end = raw.index(b":HEADER_END:") + 14
    channels = [None, "current", "lockiny"]
    t0 = time.perf_counter()
    tracemalloc.start()
    try:
        seen = fuzz(lambda b: parse_3ds(b, "fuzz.3ds", channels[len(b) % 3]), raw, header_end,
                    600, seed=20261125)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    assert sum(seen.values()) == 600
    assert sum(v for k, v in seen.items() if k.endswith("refused")) > 100
    assert sum(v for k, v in seen.items() if k.endswith("read")) > 20
    assert peak < 200 * 2**20, f"peak allocation {peak / 2**20:.0f} MiB"
    assert elapsed < 30, f"fuzz took {elapsed:.1f} s"


def test_fuzz_sxm_200_mutations():
    rng = np.random.default_rng(7)
    ch = {"Z": ("m", rng.normal(size=(16, 20)), rng.normal(size=(16, 20))),
          "LI_Demod_1_X": ("A", rng.normal(size=(16, 20)), rng.normal(size=(16, 20)))}
    raw = write_sxm(None, ch, bias=0.05)
    header_end = raw.index(b"\x1a\x04") + 2
    seen = fuzz(lambda b: parse_sxm(b, "fuzz.sxm", [None, "z", "Z [bwd]"][len(b) % 3]), raw,
                header_end, 200, seed=11)
    assert sum(v for k, v in seen.items() if k.endswith("refused")) > 30


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_fuzz_numpy_files_100_mutations(tmp_path, suffix):
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
    seen = fuzz(parse, raw, header_end, 100, seed=3, all_finite=False)
    assert sum(v for k, v in seen.items() if k.endswith("refused")) > 10


def test_fuzz_npz_lying_sizes(tmp_path):
    """A zip member whose .npy header claims a huge shape is refused before allocating."""
    member = io.BytesIO()
    np.save(member, np.ones(4, np.float32))
    raw = member.getvalue().replace(b"(4,)", b"(10**12,)"[:4]) \
        .replace(b"'shape': (4,), ", b"'shape': (999999999999,),")
    p = tmp_path / "lie.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("data.npy", raw)
    with pytest.raises(QPIFormatError):
        load_stack(p)
