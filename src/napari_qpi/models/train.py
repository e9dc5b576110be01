"""Training: stage 1 (kernel VAE), stage 2 (aligned encoder), one-step baseline.

``train`` is a generator of :class:`TrainEvent` so that the CLI can show a progress bar
and a widget a napari progress; the seed is set here, once, and recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import losses
from .data import KernelBank, build_bank, make_observations
from .nets import KernelVAE, ModelConfig, ObservationEncoder, OneStep
from .weights import save_set


@dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes a training run (with the seed, it re-creates the weights)."""

    split: str = "all"
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
    scatterers: tuple[int, int] = (5, 100)
    model: ModelConfig = field(default_factory=ModelConfig)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainEvent:
    """Progress of one stage: ``step`` of ``total`` with the latest named losses."""

    stage: str
    step: int
    total: int
    losses: dict


def _floats(loss: torch.Tensor, terms: dict) -> dict:
    return {"loss": float(loss.detach()), **{n: float(v.detach()) for n, v in terms.items()}}


def _optimizer(params, cfg: TrainConfig, steps: int):
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps,
                                                pct_start=0.1)
    return opt, sched


def _augment(k: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random mirror/transpose: mirrored kernels are as physical as rotated ones."""
    if torch.rand(1, generator=gen) < 0.5:
        k = k.flip(-1)
    if torch.rand(1, generator=gen) < 0.5:
        k = k.transpose(-2, -1)
    return k


def _batch(bank: KernelBank, cfg: TrainConfig, gen: torch.Generator, device):
    idx = torch.randint(0, len(bank), (cfg.batch_size,), generator=gen)
    size = cfg.map_sizes[int(torch.randint(0, len(cfg.map_sizes), (1,), generator=gen))]
    y, act = make_observations(bank, idx, size, gen, scatterers=cfg.scatterers)
    y = y * torch.where(torch.rand(len(y), 1, 1, generator=gen) < 0.5, -1.0, 1.0)
    guide = (act > 0).float()
    guide[torch.rand(len(y), generator=gen) < cfg.guide_drop] = 0.0
    return (y.to(device), guide.to(device), bank.windows[idx].to(device),
            bank.orders[idx].to(device))


def _fit(stage: str, module: torch.nn.Module, steps: int, cfg: TrainConfig, batch_loss):
    """The optimisation loop every stage shares; ``batch_loss()`` → (loss, named terms)."""
    params = [p for p in module.parameters() if p.requires_grad]
    opt, sched = _optimizer(params, cfg, steps)
    module.train()
    for step in range(steps):
        loss, terms = batch_loss()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        yield TrainEvent(stage, step + 1, steps, _floats(loss, terms))
    module.eval()


def train_stage1(vae: KernelVAE, bank: KernelBank, cfg: TrainConfig, gen, device):
    """Stage 1: the kernel VAE on bank kernels (mirrored/transposed at random)."""

    def batch_loss():
        idx = torch.randint(0, len(bank), (cfg.batch_size,), generator=gen)
        k = _augment(bank.windows[idx], gen).to(device)
        mu, logvar = vae.encode(k)
        z = mu + torch.randn(mu.shape, generator=gen).to(device) * (0.5 * logvar).exp()
        rec = vae.decode(z)
        terms = losses.reconstruction(rec, k)
        terms["symmetry"] = losses.symmetry(rec, bank.orders[idx].to(device))
        terms["kl"] = losses.kl(mu, logvar)
        loss = (terms["full"] + terms["tail"] + terms["tail_cos"]
                + cfg.symmetry_weight * terms["symmetry"] + cfg.beta * terms["kl"])
        return loss, terms

    yield from _fit("stage1", vae, cfg.stage1_steps, cfg, batch_loss)


def train_stage2(enc: ObservationEncoder, vae: KernelVAE, bank: KernelBank,
                 cfg: TrainConfig, gen, device):
    """Stage 2: the observation encoder aligned to the frozen stage-1 posterior."""
    for p in vae.parameters():
        p.requires_grad_(False)
    if enc.cfg.guide_branch:
        # the guide is a noisy kernel: start from stage 1's kernel encoder
        enc.guide.load_state_dict(vae.encoder.state_dict())

    def batch_loss():
        y, guide, k, _ = _batch(bank, cfg, gen, device)
        with torch.no_grad():
            mu_t, logvar_t = vae.encode(k)
        mu, logvar = enc.encode_observations(y, guide)
        terms = {"mu": ((mu - mu_t) ** 2).mean(), "logvar": ((logvar - logvar_t) ** 2).mean()}
        dec = losses.reconstruction(vae.decode(mu), k)
        terms.update({f"dec_{n}": v for n, v in dec.items()})
        loss = terms["mu"] + terms["logvar"] + cfg.decoded_weight * sum(dec.values())
        return loss, terms

    yield from _fit("stage2", enc, cfg.stage2_steps, cfg, batch_loss)


def train_onestep(net: OneStep, bank: KernelBank, cfg: TrainConfig, gen, device):
    """The one-step baseline, end to end on the same batches' distribution."""

    def batch_loss():
        y, guide, k, _ = _batch(bank, cfg, gen, device)
        terms = losses.reconstruction(net(y, guide), k)
        return sum(terms.values()), terms

    yield from _fit("onestep", net, cfg.onestep_steps, cfg, batch_loss)


def _save_state(path: Path, modules: dict, done: list[str], gen: torch.Generator) -> None:
    torch.save({"modules": {n: m.state_dict() for n, m in modules.items()}, "done": done,
                "rng": gen.get_state()}, path)


def train(cfg: TrainConfig, out_dir: str | Path, *, device: str = "cpu",
          resume: bool = True, bank: KernelBank | None = None,
          ) -> Generator[TrainEvent, None, Path]:
    """Train all three networks; write a weight set to ``out_dir``.

    Resumable at stage boundaries: a finished stage is kept in ``out_dir/state.pt``
    (a private checkpoint of this run, only ever read by this function).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    bank_file = out / "bank.pt"
    if bank is not None:
        pass  # the caller's kernels (e.g. the paper protocol's fixed 80)
    elif resume and bank_file.is_file():
        bank = KernelBank(**torch.load(bank_file, weights_only=True))
    else:
        bank = build_bank(cfg.split, cfg.bank_size, kernel_size=cfg.model.kernel_size,
                          seed=cfg.seed)
        torch.save({"spectra": bank.spectra, "windows": bank.windows, "orders": bank.orders,
                    "families": bank.families}, bank_file)
    yield TrainEvent("bank", len(bank), len(bank), {"seconds": time.perf_counter() - t0})

    mcfg = cfg.model
    modules = {"vae": KernelVAE(mcfg).to(device), "encoder": ObservationEncoder(mcfg).to(device),
               "onestep": OneStep(mcfg).to(device)}
    state_file = out / "state.pt"
    done: list[str] = []
    if resume and state_file.is_file():
        st = torch.load(state_file, weights_only=True)
        for n, sd in st["modules"].items():
            modules[n].load_state_dict(sd)
        done = list(st["done"])
        gen.set_state(st["rng"])
    timings = {}
    stages = [
        ("stage1", lambda: train_stage1(modules["vae"], bank, cfg, gen, device)),
        ("stage2", lambda: train_stage2(modules["encoder"], modules["vae"], bank, cfg, gen,
                                        device)),
        ("onestep", lambda: train_onestep(modules["onestep"], bank, cfg, gen, device)),
    ]
    for name, run in stages:
        if name in done:
            continue
        ts = time.perf_counter()
        yield from run()
        timings[name] = time.perf_counter() - ts
        done.append(name)
        _save_state(state_file, modules, done, gen)
    meta = {"train": cfg.to_dict(), "seconds": timings, "total_seconds":
            time.perf_counter() - t0, "torch": torch.__version__}
    save_set(out, mcfg, {n: m.cpu() for n, m in modules.items()}, meta)
    (out / "train_log.json").write_text(json.dumps(meta, indent=2, default=str))
    return out
