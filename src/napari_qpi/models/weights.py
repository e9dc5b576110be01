"""Weights on disk: safetensors (never unpickled) with a JSON config beside them.

Every file of a set is checked as it is read: a damaged, truncated or non-finite file
raises :class:`~napari_qpi.io.QPIFormatError` naming it, so a broken set never yields a
NaN kernel or a raw ``SafetensorError``.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..io.errors import QPIFormatError
from .nets import KernelVAE, ModelConfig, ObservationEncoder, OneStep

#: The parts of a trained model set and their classes.
PARTS = {"vae": KernelVAE, "encoder": ObservationEncoder, "onestep": OneStep}
#: Weight sets shipped inside the package: trained on every family, or on the seen
#: split only (for the unseen-family benchmark rows).
SHIPPED = ("default", "seen")
#: What to do about a damaged set, ending each message about one.
FIX = ("re-train it (napari-qpi train) or reinstall napari-qpi, or pass a valid "
       "weights set")


def save_set(directory: str | Path, cfg: ModelConfig, modules: dict, meta: dict,
             *, half: bool = True) -> None:
    """Write ``<part>.safetensors`` for each module and ``config.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, module in modules.items():
        state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
                 for k, v in module.state_dict().items()}
        save_file(state, str(directory / f"{name}.safetensors"))
    (directory / "config.json").write_text(json.dumps(
        {"model": cfg.to_dict(), **meta}, indent=2, default=str))


def resolve(weights: str | os.PathLike) -> Path:
    """The folder of ``weights``: a shipped set's name, or a folder holding a set.

    Raises
    ------
    ValueError
        Neither a shipped name nor an existing folder; the message lists the names.
    """
    if isinstance(weights, str) and weights in SHIPPED:
        return shipped_path(weights)
    if not isinstance(weights, (str, os.PathLike)) or not str(weights).strip():
        raise ValueError(f"weights must be a shipped set's name ({', '.join(SHIPPED)}) or "
                         f"a folder from napari-qpi train, got {weights!r}")
    path = Path(weights)
    if path.is_file():
        raise ValueError(f"weights={str(weights)!r} is a file; pass the folder that holds "
                         "config.json and the .safetensors files")
    if not path.is_dir():
        raise ValueError(f"weights={str(weights)!r} is neither a shipped set "
                         f"({', '.join(SHIPPED)}) nor an existing folder from napari-qpi "
                         "train")
    return path


def read_config(directory: str | Path) -> tuple[ModelConfig, dict]:
    """The model config and metadata of ``directory/config.json``, checked."""
    cfg_file = Path(directory) / "config.json"
    if not cfg_file.is_file():
        raise QPIFormatError(cfg_file, f"missing; {directory} is not a napari-qpi weight "
                                       f"set: {FIX}")
    try:
        meta = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise QPIFormatError(cfg_file, f"not valid JSON ({exc}): {FIX}") from None
    model = meta.get("model") if isinstance(meta, dict) else None
    if not isinstance(model, dict):
        raise QPIFormatError(cfg_file, f"has no 'model' object (the network's shape): {FIX}")
    try:
        return ModelConfig.from_dict(model), meta
    except KeyError as exc:
        raise QPIFormatError(cfg_file, f"'model' lacks the key {exc}: {FIX}") from None
    except (TypeError, ValueError) as exc:  # unknown keys, values of the wrong type
        raise QPIFormatError(cfg_file, f"'model' is not a network config ({exc}): "
                                       f"{FIX}") from None


def read_part(path: Path) -> dict:
    """The tensors of one ``.safetensors`` file as float32, refusing damaged files and
    NaN/inf values."""
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise QPIFormatError(path, f"missing from the weight set: {FIX}") from None
    except Exception as exc:  # SafetensorError, OSError: a damaged or truncated file
        raise QPIFormatError(path, f"not a readable safetensors file ({exc}): {FIX}") from None
    out = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    floats = [v.reshape(-1) for v in out.values() if v.is_floating_point()]
    if floats and not bool(torch.isfinite(torch.cat(floats)).all()):  # one check: fast
        key, value = next((k, v) for k, v in out.items()
                          if v.is_floating_point() and not bool(torch.isfinite(v).all()))
        bad = int((~torch.isfinite(value)).sum())
        raise QPIFormatError(path, f"tensor {key!r} holds {bad} NaN or infinite values: "
                                   f"{FIX}")
    return out


def load_set(directory: str | Path, parts=tuple(PARTS), device="cpu"):
    """Rebuild the modules of a weight set from its files alone.

    Raises
    ------
    QPIFormatError
        ``config.json`` or a ``.safetensors`` file missing, damaged, non-finite, or not
        matching the config; the message names the file.
    """
    directory = Path(directory)
    cfg, meta = read_config(directory)
    out = {}
    for name in parts:
        module = PARTS[name](cfg)
        path = directory / f"{name}.safetensors"
        try:
            module.load_state_dict(read_part(path))
        except RuntimeError as exc:  # missing keys or shapes unlike config.json's
            first = str(exc).strip().splitlines()[-1].strip()[:200]
            raise QPIFormatError(path, f"does not fit config.json's network ({first}): "
                                       f"{FIX}") from None
        out[name] = module.to(device).eval()
    return cfg, out, meta


def shipped_path(name: str = "default") -> Path:
    """Folder of a weight set shipped with the package."""
    if name not in SHIPPED:
        raise ValueError(f"weights={name!r} is unknown; shipped sets: {', '.join(SHIPPED)}")
    return Path(str(resources.files("napari_qpi.models") / "weights" / name))


#: (resolved folder, device) → (files' stamp, loaded set)
_CACHE: dict = {}


def _stamp(folder: Path) -> tuple:
    """(name, mtime_ns, size) of the set's files: a file changed on disk is reloaded."""
    stamp = []
    for name in ("config.json", *(f"{p}.safetensors" for p in PARTS)):
        try:
            st = (folder / name).stat()
            stamp.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append((name, None, None))
    return tuple(stamp)


def cached_set(name_or_path: str = "default", device: str = "cpu"):
    """Load a shipped set by name, or a set from a folder path; kept while its files
    are unchanged on disk.

    Raises
    ------
    ValueError
        ``name_or_path`` is neither a shipped name nor a folder.
    QPIFormatError
        A file of the set is missing or damaged (see :func:`load_set`).
    """
    folder = resolve(name_or_path).resolve()
    key, stamp = (str(folder), str(device)), _stamp(folder)
    hit = _CACHE.get(key)
    if hit is None or hit[0] != stamp:
        with torch.no_grad():
            loaded = load_set(folder, device=device)
        # the cached networks only infer: frozen, so a fit through the decoder (the latent
        # fit) backpropagates to its input alone, not to 60 weight tensors (a fifth of a
        # step's time on a stack); training loads its own copies with load_set
        # and channels-last: oneDNN's convolutions on few-channel 80² grids (the anchored
        # decoder's mix) run about twice as fast; a latent-fit step on 32 kernels 116–129
        # → 90 ms on 2 cores, outputs equal to 1e-5 relative
        for net in loaded[1].values():
            net.requires_grad_(False)
            net.to(memory_format=torch.channels_last)
        _CACHE[key] = (stamp, loaded)
    return _CACHE[key][1]
