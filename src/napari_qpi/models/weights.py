"""Weights on disk: safetensors (never unpickled) with a JSON config beside them."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .nets import KernelVAE, ModelConfig, ObservationEncoder, OneStep

#: The parts of a trained model set and their classes.
PARTS = {"vae": KernelVAE, "encoder": ObservationEncoder, "onestep": OneStep}
#: Weight sets shipped inside the package: trained on every family, or on the seen
#: split only (for the unseen-family benchmark rows).
SHIPPED = ("default", "seen")


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


def load_set(directory: str | Path, parts=tuple(PARTS), device="cpu"):
    """Rebuild the modules of a weight set from its files alone."""
    directory = Path(directory)
    cfg_file = directory / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{directory}: no config.json; not a napari-qpi weight set")
    meta = json.loads(cfg_file.read_text())
    cfg = ModelConfig.from_dict(meta["model"])
    out = {}
    for name in parts:
        module = PARTS[name](cfg)
        state = load_file(str(directory / f"{name}.safetensors"))
        module.load_state_dict({k: v.float() if v.is_floating_point() else v
                                for k, v in state.items()})
        out[name] = module.to(device).eval()
    return cfg, out, meta


def shipped_path(name: str = "default") -> Path:
    """Folder of a weight set shipped with the package."""
    if name not in SHIPPED:
        raise ValueError(f"weights={name!r} is unknown; shipped sets: {SHIPPED}")
    return Path(str(resources.files("napari_qpi.models") / "weights" / name))


_CACHE: dict = {}


def cached_set(name_or_path: str = "default", device: str = "cpu"):
    """Load (once) a shipped set by name, or a set from a folder path."""
    key = (str(name_or_path), device)
    if key not in _CACHE:
        path = shipped_path(name_or_path) if name_or_path in SHIPPED else Path(name_or_path)
        with torch.no_grad():
            _CACHE[key] = load_set(path, device=device)
    return _CACHE[key]
