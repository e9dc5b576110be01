"""The training config: every field that fixes a run, checked when it is built, and the
check that a checkpoint was written by the same config."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._validation import check_choice, check_int
from .data import BANK_GRID, CENTRES, SAMPLERS
from .nets import ModelConfig

#: Most kernels in a training bank. Each holds its rFFT on the 256-px bank grid
#: (complex64, 264 kB) and its window: ~280 kB, so 15 000 kernels take ~4 GiB for the
#: whole run (the shipped sets used 10 000).
MAX_BANK_SIZE = 15_000
#: Most maps per training step. Each costs ~8 MB (measured on CPU: its 256-px FFT
#: convolution, features, activations and their gradients), so 512 take ~4 GiB; the
#: shipped sets used 64.
MAX_BATCH_SIZE = 512
#: Memory of one map of a training batch (bytes), for the message that refuses a batch.
BATCH_MAP_BYTES = 8 * 2**20
#: Memory of one bank kernel (bytes), for the message that refuses a bank.
BANK_KERNEL_BYTES = 8 * BANK_GRID * (BANK_GRID // 2 + 1) + 4 * 71**2


@dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes a training run (with the seed, it re-creates the weights)."""

    split: str = "all"
    sampler: str = "broad"
    family_fraction: float = 0.25
    bank_size: int = 3000
    seed: int = 0
    batch_size: int = 32
    stage1_steps: int = 3000
    stage2_steps: int = 3000
    onestep_steps: int = 3000
    lr: float = 2e-3
    beta: float = 1e-4
    symmetry_weight: float = 0.1
    decoded_weight: float = 1.0
    map_sizes: tuple[int, ...] = (96, 128)
    guide_drop: float = 0.5
    #: largest global offset (px) of the scatterer map given to guided samples, drawn
    #: for half of them: positions a user clicks, or the peaks of a blind fit, mark a
    #: defect's brightest lobe, not the site its kernel is centred on (a 0 trains on
    #: exact sites only)
    guide_shift: int = 0
    #: fraction of each stage-2 batch whose guide is the self-guidance of the encoder's
    #: own blind kernel (the positions ``auto`` gives it; scored up to a shift of
    #: ``self_guide_radius`` px, :func:`.losses.aligned`); needs ``train(self_guide=…)``
    self_guide: float = 0.0
    self_guide_radius: int = 6
    #: the pixel a kernel is centred on: the defect's first site (``"site"``, the
    #: simulator's choice) or its brightest point (``"bright"``, where a blind fit and a
    #: user's click put a scatterer; :func:`.data.recentre_bank`)
    centre: str = "site"
    scatterers: tuple[int, int] = (5, 100)
    model: ModelConfig = field(default_factory=ModelConfig)
    #: warm start: a weight set (shipped name or folder) whose tensors of matching
    #: name and shape initialise the networks; None trains from scratch
    init_from: str | None = None

    def __post_init__(self) -> None:
        check_choice(self.split, "split", ("all", "seen"))
        check_choice(self.sampler, "sampler", SAMPLERS)
        check_choice(self.centre, "centre", CENTRES)
        for name in ("bank_size", "batch_size", "stage2_steps"):
            check_int(getattr(self, name), name, low=1)
        if self.bank_size > MAX_BANK_SIZE:
            raise ValueError(f"bank_size={self.bank_size} kernels would take about "
                             f"{self.bank_size * BANK_KERNEL_BYTES / 2**30:.1f} GiB of "
                             f"memory; pass at most {MAX_BANK_SIZE}")
        if self.batch_size > MAX_BATCH_SIZE:
            raise ValueError(f"batch_size={self.batch_size} maps per step would take about "
                             f"{self.batch_size * BATCH_MAP_BYTES / 2**30:.1f} GiB of memory; "
                             f"pass at most {MAX_BATCH_SIZE} (the shipped sets used 64)")
        # 0 steps keeps the warm start's network (stage 1: its decoder and latent space)
        for name in ("stage1_steps", "onestep_steps"):
            check_int(getattr(self, name), name, low=0)
            if getattr(self, name) == 0 and self.init_from is None:
                raise ValueError(f"{name}=0 keeps the network of a warm start: pass "
                                 "init_from (a weight set), or at least 1 step")
        check_int(self.guide_shift, "guide_shift", low=0, high=16)
        check_int(self.self_guide_radius, "self_guide_radius", low=0, high=16)
        check_int(self.seed, "seed", low=0)
        _check_real(self.lr, "lr", 0.0, 1.0, open_low=True)
        for name in ("beta", "symmetry_weight", "decoded_weight"):
            _check_real(getattr(self, name), name, 0.0, math.inf)
        for name in ("guide_drop", "family_fraction", "self_guide"):
            _check_real(getattr(self, name), name, 0.0, 1.0)
        k = self.model.kernel_size
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model must be a ModelConfig, got {type(self.model).__name__}")
        check_int(k, "model.kernel_size", low=3, high=71)
        if k % 2 == 0:
            raise ValueError(f"model.kernel_size must be odd, got {k}")
        if not isinstance(self.map_sizes, tuple) or not self.map_sizes:
            raise ValueError(f"map_sizes must be a non-empty tuple of ints, got {self.map_sizes!r}")
        for size in self.map_sizes:
            check_int(size, "map_sizes", low=max(32, k), high=BANK_GRID // 2)
        if not isinstance(self.scatterers, tuple) or len(self.scatterers) != 2:
            raise ValueError(f"scatterers must be a (low, high) tuple, got {self.scatterers!r}")
        lo = check_int(self.scatterers[0], "scatterers[0]", low=1)
        check_int(self.scatterers[1], "scatterers[1]", low=lo)
        if self.init_from is not None and not isinstance(self.init_from, str):
            raise ValueError(f"init_from must be a weight-set name or folder, got "
                             f"{self.init_from!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def _check_real(value, name: str, low: float, high: float, *, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or value > high or (open_low and value == low):
        side = "(" if open_low else "["
        raise ValueError(f"{name} must be a number in {side}{low}, {high}], got {value!r}")


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


#: The fields that fix the kernel bank: ``bank.pt`` is reused when only these agree.
BANK_FIELDS = ("split", "sampler", "family_fraction", "bank_size", "seed")


def _bank_fields(d: dict) -> dict:
    return {**{k: d.get(k) for k in BANK_FIELDS},
            "kernel_size": (d.get("model") or {}).get("kernel_size")}


def _check_resume(path: Path, stored: dict | None, cfg: TrainConfig, *,
                  bank: bool = False) -> None:
    """Refuse a checkpoint written by another training config, naming the fields (for
    the bank only the fields that fix it, :data:`BANK_FIELDS` and the kernel size)."""
    now = _jsonable(cfg.to_dict())
    if bank and stored is not None:
        stored, now = _bank_fields(stored), _bank_fields(now)
    if stored is None:
        raise ValueError(f"{path} holds no training config (written by an older version); "
                         "start afresh with resume=False (CLI: --restart) or use another --out")
    if stored != now:
        diff = [f"{k}: {stored.get(k)!r} → {now.get(k)!r}" for k in sorted(set(stored) | set(now))
                if stored.get(k) != now.get(k)]
        raise ValueError(f"{path} was written by a different training config ("
                         + "; ".join(diff) + "); resume with the same settings, start afresh "
                         "with resume=False (CLI: --restart), or use another output folder")
