"""Bad input, round two: damaged weight sets, outputs that would overwrite something,
stacks that save but would not load, paths that are not files, and sizes that would
exhaust memory. Each gets one clear error naming the argument or the file."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from test_cli import _one_error_line

from napari_qpi import QPIFormatError, QPIStack, load_stack, simulate
from napari_qpi.cli import main
from napari_qpi.models.inference import predict
from napari_qpi.models.train import TrainConfig, train
from napari_qpi.models.weights import cached_set, load_set, shipped_path

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- weights

def _first_float(state: dict) -> str:
    return next(k for k, v in state.items() if v.is_floating_point())


def _poison(path: Path, value: float) -> None:
    state = load_file(str(path))
    state[_first_float(state)].view(-1)[0] = value
    save_file(state, str(path))


def _config(folder: Path, edit) -> None:
    meta = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(edit(meta))


def _lying_header(path: Path) -> None:
    raw = path.read_bytes()  # the header's length, then the header: claim a longer one
    path.write_bytes((int.from_bytes(raw[:8], "little") + 10**6).to_bytes(8, "little")
                     + raw[8:])


#: id → (damage done to a copy of the shipped set, file named, phrase)
BAD_WEIGHTS = {
    "truncated": (lambda d: (d / "vae.safetensors").write_bytes(
        (d / "vae.safetensors").read_bytes()[:1000]), "vae.safetensors", "not a readable"),
    "empty": (lambda d: (d / "encoder.safetensors").write_bytes(b""),
              "encoder.safetensors", "not a readable"),
    "lying-header": (lambda d: _lying_header(d / "onestep.safetensors"),
                     "onestep.safetensors", "not a readable"),
    "nan-tensor": (lambda d: _poison(d / "vae.safetensors", float("nan")),
                   "vae.safetensors", "NaN or infinite"),
    "inf-tensor": (lambda d: _poison(d / "encoder.safetensors", float("inf")),
                   "encoder.safetensors", "NaN or infinite"),
    "part-missing": (lambda d: (d / "vae.safetensors").unlink(), "vae.safetensors",
                     "missing"),
    "wrong-shapes": (lambda d: _config(d, lambda m: json.dumps(
        {**m, "model": {**m["model"], "latent_dim": 32}})), ".safetensors",
                     "does not fit config.json"),
    "config-not-json": (lambda d: (d / "config.json").write_text("{nope"), "config.json",
                        "not valid JSON"),
    "config-no-model": (lambda d: (d / "config.json").write_text("{}"), "config.json",
                        "no 'model'"),
    "config-no-key": (lambda d: _config(d, lambda m: json.dumps(
        {**m, "model": {k: v for k, v in m["model"].items() if k != "widths"}})),
                      "config.json", "lacks the key 'widths'"),
    "config-missing": (lambda d: (d / "config.json").unlink(), "config.json", "missing"),
}


def _damaged(tmp_path: Path, name: str) -> tuple[Path, str, str]:
    folder = tmp_path / name
    shutil.copytree(shipped_path("default"), folder)
    damage, file, phrase = BAD_WEIGHTS[name]
    damage(folder)
    return folder, file, phrase


@pytest.mark.parametrize("name", list(BAD_WEIGHTS))
def test_damaged_weights_name_the_file(tmp_path, name: str) -> None:
    folder, file, phrase = _damaged(tmp_path, name)
    for load in (load_set, cached_set):
        with pytest.raises(QPIFormatError, match=phrase) as info:
            load(folder) if load is load_set else load(str(folder))
        assert str(folder) in str(info.value) and file in str(info.value)
        assert "re-train" in str(info.value) and "valid weights" in str(info.value)


@pytest.mark.parametrize("name", ["truncated", "nan-tensor", "config-no-key"])
def test_cli_damaged_weights_is_one_line(tmp_path, capsys, name: str) -> None:
    folder, file, _ = _damaged(tmp_path, name)
    src = QPIStack(RNG.standard_normal((1, 32, 32))).save(tmp_path / "s.npz")
    line = _one_error_line(capsys, main(["extract", str(src), "--weights", str(folder),
                                         "--out", str(tmp_path / "k.npz"), "--quiet"]))
    assert file in line and "internal error" not in line
    assert not (tmp_path / "k.npz").exists()


@pytest.mark.parametrize("call", [
    lambda w: cached_set(w),
    lambda w: next(predict(np.zeros((1, 64, 64), np.float32), weights=w)),
], ids=["cached_set", "predict"])
@pytest.mark.parametrize("weights", ["bogus", "no/such/folder"])
def test_unknown_weights_is_a_value_error_listing_the_shipped(call, weights: str) -> None:
    with pytest.raises(ValueError, match=r"neither a shipped set \(default, seen\)"):
        call(weights)


def test_weights_given_a_file_says_pass_the_folder() -> None:
    with pytest.raises(ValueError, match="is a file; pass the folder"):
        cached_set(str(shipped_path("default") / "vae.safetensors"))


def test_init_from_a_damaged_set_fails_before_any_work(tmp_path, capsys) -> None:
    folder, file, _ = _damaged(tmp_path, "truncated")
    start = time.perf_counter()
    line = _one_error_line(capsys, main(["train", "--out", str(tmp_path / "tr"),
                                         "--init-from", str(folder), "--quiet"]))
    assert file in line and "internal error" not in line
    cfg = TrainConfig(init_from=str(folder), bank_size=2000, batch_size=4)
    with pytest.raises(QPIFormatError, match=file):
        next(train(cfg, tmp_path / "api"))
    assert time.perf_counter() - start < 10  # the 2000-kernel bank would take minutes
    assert not (tmp_path / "tr").exists() and not (tmp_path / "api").exists()


def test_weights_changed_on_disk_are_reloaded(tmp_path) -> None:
    folder = tmp_path / "set"
    shutil.copytree(shipped_path("default"), folder)
    vae = folder / "vae.safetensors"
    key = _first_float(load_file(str(vae)))
    before = cached_set(str(folder))[1]["vae"].state_dict()[key].clone()
    state = load_file(str(vae))
    state[key] = state[key] * 2 + 1
    save_file(state, str(vae))
    st = vae.stat()  # a coarse clock could leave mtime unchanged: move it on
    os.utime(vae, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = cached_set(str(folder))[1]["vae"].state_dict()[key]
    torch.testing.assert_close(after, (before * 2 + 1).half().float())
    assert cached_set(str(folder))[1]["vae"] is cached_set(str(folder))[1]["vae"]


# --------------------------------------------------------------------------- CLI outputs

@pytest.fixture
def stack_in(tmp_path) -> Path:
    return QPIStack(RNG.standard_normal((1, 32, 32)), pixel_size=2.0).save(tmp_path / "in.npz")


def _link(src: Path, dst: Path, kind: str) -> Path:
    os.link(src, dst) if kind == "hard" else os.symlink(src, dst)
    return dst


#: id → (argv with {src} {tmp}, what to make first, phrase)
OUTPUTS = {
    "extract-existing": (["extract", "{src}", "--out", "{tmp}/old.npz"], "file",
                         "pass --overwrite or another --out"),
    "extract-hardlink": (["extract", "{src}", "--out", "{tmp}/old.npz", "--overwrite"],
                         "hard", "is the input file"),
    "extract-symlink": (["extract", "{src}", "--out", "{tmp}/old.npz", "--overwrite"],
                        "soft", "is the input file"),
    "extract-self-force": (["extract", "{src}", "--out", "{src}", "--force"], None,
                           "is the input file"),
    "extract-dir": (["extract", "{src}", "--out", "{tmp}/old.npz"], "dir",
                    "must be a file path, not the directory"),
    "extract-dir-no-suffix": (["extract", "{src}", "--out", "{tmp}/old"], "dir",
                              "must be a file path, not the directory"),
    "simulate-existing": (["simulate", "--out", "{tmp}/old.npz", "--size", "16"], "file",
                          "pass --overwrite or another --out"),
    "simulate-dir": (["simulate", "--out", "{tmp}/old", "--size", "16"], "dir",
                     "must be a file path, not the directory"),
    "demo-existing": (["demo", "--figure", "{tmp}/old.npz", "--size", "16"], "file",
                      "pass --overwrite or another --figure"),
    "benchmark-existing": (["benchmark", "--out", "{tmp}/old.npz"], "file",
                           "pass --overwrite or another --out"),
}


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_outputs_never_overwrite_silently(stack_in, tmp_path, capsys, name: str) -> None:
    argv, make, phrase = OUTPUTS[name]
    target = Path(argv[argv.index("--out" if "--out" in argv else "--figure") + 1]
                  .format(src=stack_in, tmp=tmp_path))
    if make == "file":
        target.write_bytes(b"keep")
    elif make == "dir":
        target.mkdir()
    elif make:
        _link(stack_in, target, make)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    line = _one_error_line(capsys, main([a.format(src=stack_in, tmp=tmp_path)
                                         for a in argv]))
    assert phrase in line and str(target) in line
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before  # nothing written, nothing beside (no DIR.npz)


def test_overwrite_replaces_another_file(stack_in, tmp_path) -> None:
    out = tmp_path / "old.npz"
    out.write_bytes(b"keep")
    assert main(["extract", str(stack_in), "--out", str(out), "--overwrite", "--quiet",
                 "--method", "power", "--kernel-size", "15"]) == 0
    assert load_stack(out).metadata["kind"] == "napari-qpi extraction"
    assert main(["simulate", "--out", str(out), "--size", "16", "--energies", "1",
                 "--kernel-size", "15", "--overwrite"]) == 0
    assert load_stack(out).shape == (1, 16, 16)


# --------------------------------------------------------------------------- round trips

#: id → (QPIStack kwargs, phrase): refused by the constructor and, written as a file,
#: by load_stack with the same phrase
STACKS = {
    "inf": ({"data": np.where(RNG.standard_normal((2, 8, 8)) > 1, np.inf, 0.5)}, "infinite"),
    "all-nan": ({"data": np.full((2, 8, 8), np.nan)}, "no finite values"),
    "empty": ({"data": np.zeros((0, 8, 8))}, "empty"),
    "rgb": ({"data": np.ones((8, 32, 3))}, "RGB"),
    "tiny-pixel": ({"data": np.ones((1, 8, 8)), "pixel_size": 1e-30}, "outside"),
    "huge-pixel": ({"data": np.ones((1, 8, 8)), "pixel_size": 1e30}, "outside"),
    "huge-energy": ({"data": np.ones((2, 8, 8)), "energies": [0.0, 1e300]}, r"1e\+06 meV"),
}


@pytest.mark.parametrize("name", list(STACKS))
def test_stack_rules_are_the_loaders(tmp_path, name: str) -> None:
    kwargs, phrase = STACKS[name]
    with pytest.raises(ValueError, match=phrase):
        QPIStack(**kwargs)
    path = tmp_path / f"{name}.npz"
    np.savez(path, **{k: np.asarray(v, dtype=float) for k, v in kwargs.items()})
    with pytest.raises(QPIFormatError, match=phrase):
        load_stack(path)


def test_nan_pixels_round_trip(tmp_path) -> None:
    data = np.where(RNG.standard_normal((2, 8, 8)) > 1, np.nan, 1.0)
    back = load_stack(QPIStack(data, pixel_size=1e-4).save(tmp_path / "nan.npz"))
    np.testing.assert_array_equal(np.isnan(back.data), np.isnan(data))


def test_save_refuses_what_load_would(tmp_path, monkeypatch) -> None:
    import napari_qpi.io._common as common

    monkeypatch.setattr(common, "MAX_VALUES", 100)
    with pytest.raises(ValueError, match="more than load_stack reads"):
        QPIStack(np.ones((2, 8, 8))).save(tmp_path / "big.npz")
    assert not (tmp_path / "big.npz").exists()


def test_float32_data_is_copied() -> None:
    data = np.ones((1, 8, 8), np.float32)
    stack = QPIStack(data)
    data[0, 0, 0] = 5.0
    assert stack.data[0, 0, 0] == 1.0


def _loop(tmp_path: Path) -> Path:
    os.symlink(tmp_path / "loop.npz", tmp_path / "loop.npz")
    return tmp_path / "loop.npz"


def _fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "fifo.npz")
    return tmp_path / "fifo.npz"


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "maps.npz").mkdir()
    return tmp_path / "maps.npz"


#: id → (make the path, phrase)
PATHS = {
    "directory": (_folder, "is a directory; pass a file such as"),
    "directory-no-suffix": (lambda t: t.joinpath("maps").mkdir() or t / "maps",
                            "is a directory"),
    "fifo": (_fifo, "is not a regular file"),
    "symlink-loop": (_loop, "too many levels of symbolic links"),
    "too-long": (lambda t: t / ("a" * 5000 + ".npz"), "path too long"),
    "missing": (lambda t: t / "nope.npz", "no such file"),
}


@pytest.mark.parametrize("name", list(PATHS))
def test_paths_that_are_not_files(tmp_path, capsys, name: str) -> None:
    make, phrase = PATHS[name]
    path = make(tmp_path)
    with pytest.raises(QPIFormatError, match=phrase):
        load_stack(path)
    line = _one_error_line(capsys, main(["extract", str(path), "--out",
                                         str(tmp_path / "k.npz")]))
    assert phrase in line


# --------------------------------------------------------------------------- sizes

def test_simulate_refuses_what_memory_cannot_hold(tmp_path, capsys) -> None:
    # (4000 energies take the same path; 1000 already need ~6 GiB)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"GiB of memory .* at most \d+ energies"):
        simulate(shape=(16, 16), kernel_size=15, energies=np.linspace(-1, 1, 1000))
    with pytest.raises(ValueError, match="fewer scatterers or model='linear'"):
        simulate(shape=(128, 128), n_scatterers=5000, model="tmatrix")
    line = _one_error_line(capsys, main(["simulate", "--out", str(tmp_path / "x.npz"),
                                         "--energies", "1000", "--size", "16"]))
    assert "GiB of memory" in line and "at most" in line
    assert time.perf_counter() - start < 10 and not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(("option", "value"), [("--batch-size", "1000000"),
                                               ("--bank-size", "1000000000")])
def test_train_refuses_sizes_beyond_memory(tmp_path, capsys, option: str, value: str) -> None:
    line = _one_error_line(capsys, main(["train", "--out", str(tmp_path / "tr"), option,
                                         value]))
    assert option in line and "memory" in line
    field = option[2:].replace("-", "_")
    with pytest.raises(ValueError, match=f"{field}=.*GiB of memory; pass at most"):
        TrainConfig(**{field: int(value)})
    assert not (tmp_path / "tr").exists()
