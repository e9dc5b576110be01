"""Training: stage 1 (kernel VAE), stage 2 (aligned encoder), one-step baseline.

``train`` is a generator of :class:`~napari_qpi.progress.Progress` events (``message``
is the stage, ``info`` the named losses) so that the CLI can show a progress bar and a
widget a napari progress; the seed is set here, once, and recorded. Checkpoints carry
the training config and a run refuses to resume from another config's files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from pathlib import Path

import torch

from .._validation import check_int
from ..progress import Progress
from . import losses
from .data import KernelBank, bank_specs, iter_bank, make_observations, recentre_bank
from .nets import KernelVAE, ObservationEncoder, OneStep
from .train_config import TrainConfig, _check_resume, _jsonable
from .warm import first_channels, load_source, warm_start
from .weights import save_set

__all__ = ["TrainConfig", "train", "train_onestep", "train_stage1", "train_stage2"]


def _floats(loss: torch.Tensor, terms: dict) -> dict:
    return {"loss": float(loss.detach()), **{n: float(v.detach()) for n, v in terms.items()}}


def _optimizer(params, cfg: TrainConfig, steps: int):
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps,
                                                pct_start=0.1)
    return opt, sched


def _augment(*images: torch.Tensor, gen: torch.Generator) -> list[torch.Tensor]:
    """One random mirror/transpose for all ``images`` (kernels and their maps):
    mirrored kernels are as physical as rotated ones."""
    out = list(images)
    if torch.rand(1, generator=gen) < 0.5:
        out = [x.flip(-1) for x in out]
    if torch.rand(1, generator=gen) < 0.5:
        out = [x.transpose(-2, -1) for x in out]
    return out


def _batch(bank: KernelBank, cfg: TrainConfig, gen: torch.Generator, device):
    idx = torch.randint(0, len(bank), (cfg.batch_size,), generator=gen)
    size = cfg.map_sizes[int(torch.randint(0, len(cfg.map_sizes), (1,), generator=gen))]
    y, act = make_observations(bank, idx, size, gen, scatterers=cfg.scatterers)
    y = y * torch.where(torch.rand(len(y), 1, 1, generator=gen) < 0.5, -1.0, 1.0).to(y.device)
    guide = (act > 0).float()
    if cfg.guide_shift:
        s = cfg.guide_shift
        moves = torch.randint(-s, s + 1, (len(y), 2), generator=gen)
        moves[torch.rand(len(y), generator=gen) < 0.5] = 0
        guide = torch.stack([g.roll(tuple(m.tolist()), (-2, -1)) for g, m in zip(guide, moves)])
    guide[torch.rand(len(y), generator=gen) < cfg.guide_drop] = 0.0
    at = idx.to(bank.windows.device)
    return (y.to(device), guide.to(device), bank.windows[at].to(device),
            bank.orders[at].to(device))


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
        yield Progress(stage, step + 1, steps, _floats(loss, terms))
    module.eval()


def train_stage1(vae: KernelVAE, bank: KernelBank, cfg: TrainConfig, gen, device):
    """Stage 1: the kernel VAE on bank kernels (mirrored/transposed at random)."""

    def batch_loss():
        if vae.cfg.anchor:  # the decoder reads the power kernel of a simulated map
            y, _, k, orders = _batch(bank, cfg, gen, device)
            y, k = _augment(y, k, gen=gen)
            anchor = vae.anchor_of(y)
        else:
            idx = torch.randint(0, len(bank), (cfg.batch_size,), generator=gen)
            at = idx.to(bank.windows.device)
            (k,) = _augment(bank.windows[at].to(device), gen=gen)
            orders, anchor = bank.orders[at].to(device), None
        mu, logvar = vae.encode(k, anchor)
        z = mu + torch.randn(mu.shape, generator=gen).to(device) * (0.5 * logvar).exp()
        rec = vae.decode(z, anchor)
        terms = losses.reconstruction(rec, k)
        terms["symmetry"] = losses.symmetry(rec, orders)
        terms["kl"] = losses.kl(mu, logvar)
        loss = (terms["full"] + terms["tail"] + terms["tail_cos"]
                + cfg.symmetry_weight * terms["symmetry"] + cfg.beta * terms["kl"])
        return loss, terms

    yield from _fit("stage1", vae, cfg.stage1_steps, cfg, batch_loss)


def train_stage2(enc: ObservationEncoder, vae: KernelVAE, bank: KernelBank,
                 cfg: TrainConfig, gen, device, *, warm: frozenset = frozenset(),
                 self_guide=None):
    """Stage 2: the observation encoder aligned to the frozen stage-1 posterior.

    ``warm`` names the encoder trunks already initialised by a warm start;
    ``self_guide`` (maps, kernels) → guides marks the scatterers a kernel finds in its
    maps (``cfg.self_guide`` > 0 needs it).
    """
    for p in vae.parameters():
        p.requires_grad_(False)
    # the guide and the power kernel are noisy kernels: start their trunks from
    # stage 1's kernel encoder (unless a warm start already trained them)
    for trunk in ("guide", "power"):
        if hasattr(enc, trunk) and trunk not in warm:
            getattr(enc, trunk).load_state_dict(first_channels(
                vae.encoder.state_dict(), getattr(enc, trunk).state_dict()))

    n_self = round(cfg.self_guide * cfg.batch_size)

    def batch_loss():
        y, guide, k, _ = _batch(bank, cfg, gen, device)
        if n_self:  # the first n_self maps: the positions the blind kernel finds
            with torch.no_grad():
                a = vae.anchor_of(y[:n_self])
                blind = vae.decode(enc.encode_observations(y[:n_self], None, a)[0], a)
                guide = torch.cat([self_guide(y[:n_self, None], blind[:, None]),
                                   guide[n_self:]])
        anchor = vae.anchor_of(y)  # the power trunk's input too: computed once
        with torch.no_grad():
            mu_t, logvar_t = vae.encode(k, anchor)
        mu, logvar = enc.encode_observations(y, guide, anchor)
        decoded = vae.decode(mu, anchor)
        terms, loss = {}, decoded.new_zeros(())
        if n_self < len(y):  # exact positions (or none): the stage-1 latent of the kernel
            rest = slice(n_self, None)
            terms = {"mu": ((mu[rest] - mu_t[rest]) ** 2).mean(),
                     "logvar": ((logvar[rest] - logvar_t[rest]) ** 2).mean()}
            dec = losses.reconstruction(decoded[rest], k[rest])
            terms.update({f"dec_{n}": v for n, v in dec.items()})
            loss = terms["mu"] + terms["logvar"] + cfg.decoded_weight * sum(dec.values())
        if n_self:  # which defect site the kernel is centred on, the map cannot say
            own = losses.reconstruction(*losses.aligned(decoded[:n_self], k[:n_self],
                                                        cfg.self_guide_radius))
            terms.update({f"self_{n}": v for n, v in own.items()})
            loss = loss + cfg.self_guide * cfg.decoded_weight * sum(own.values())
        return loss, terms

    yield from _fit("stage2", enc, cfg.stage2_steps, cfg, batch_loss)


def train_onestep(net: OneStep, bank: KernelBank, cfg: TrainConfig, gen, device):
    """The one-step baseline, end to end on the same batches' distribution."""

    def batch_loss():
        y, guide, k, _ = _batch(bank, cfg, gen, device)
        terms = losses.reconstruction(net(y, guide), k)
        return sum(terms.values()), terms

    yield from _fit("onestep", net, cfg.onestep_steps, cfg, batch_loss)


def _save_state(path: Path, modules: dict, done: list[str], gen: torch.Generator,
                cfg: TrainConfig) -> None:
    torch.save({"modules": {n: m.state_dict() for n, m in modules.items()}, "done": done,
                "rng": gen.get_state(), "config": _jsonable(cfg.to_dict())}, path)


def train(cfg: TrainConfig, out_dir: str | Path, *, device: str = "cpu",
          resume: bool = True, bank: KernelBank | None = None, workers: int = 1,
          self_guide=None) -> Generator[Progress, None, Path]:
    """Train all three networks; write a weight set to ``out_dir``.

    Parameters
    ----------
    cfg : TrainConfig
        Validated when built; every field is recorded in the checkpoints and weights.
    out_dir : str or Path
        Folder of the run (created); must not be a file.
    device : str
        A torch device string.
    resume : bool
        Continue from ``out_dir/bank.pt`` and ``out_dir/state.pt`` (finished stages) if
        they exist; they must have been written with the same ``cfg``.
    bank : KernelBank, optional
        The caller's kernels (e.g. the paper protocol's fixed 80) instead of a drawn bank.
    workers : int
        Processes that simulate the bank (the same bank for any count).
    self_guide : callable, optional
        ``(maps (B, 1, H, W), kernels (B, 1, k, k)) → (B, H, W)`` scatterer guides, for
        ``cfg.self_guide`` > 0 (:func:`napari_qpi.extraction.selfguide.self_guide`; passed
        in because training sits below extraction).

    Yields
    ------
    Progress
        ``message`` is ``"bank"`` or the stage, ``info`` the named losses.

    Returns
    -------
    Path
        ``out_dir``, holding the weight set.

    Raises
    ------
    ValueError
        Bad arguments, or a checkpoint of another config (before any file is written).
    QPIFormatError
        ``cfg.init_from`` names a weight set with a missing or damaged file.
    """
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir={str(out)!r} is a file; pass a folder for the weight set")
    try:
        device = str(torch.device(device))
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a torch device (e.g. 'cpu', 'cuda')") from err
    check_int(workers, "workers", low=1)
    if cfg.self_guide > 0 and not callable(self_guide):
        raise ValueError("cfg.self_guide > 0 needs self_guide=napari_qpi.extraction."
                         "selfguide.self_guide (or set self_guide=0)")
    if cfg.init_from is not None:  # a damaged set fails now, not after the bank
        load_source(cfg.init_from)
    bank_file, state_file = out / "bank.pt", out / "state.pt"
    state = None
    if resume and bank is None and bank_file.is_file():
        stored = torch.load(bank_file, weights_only=True)
        _check_resume(bank_file, stored.pop("config", None), cfg, bank=True)
    if resume and state_file.is_file():
        state = torch.load(state_file, weights_only=True)
        _check_resume(state_file, state.get("config"), cfg)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    if bank is not None:
        pass  # the caller's kernels
    elif resume and bank_file.is_file():
        bank = KernelBank(**stored)
    else:
        specs = bank_specs(cfg.split, cfg.bank_size, seed=cfg.seed, sampler=cfg.sampler,
                           family_fraction=cfg.family_fraction)
        bank = yield from iter_bank(specs, kernel_size=cfg.model.kernel_size,
                                    workers=workers)
        torch.save({"spectra": bank.spectra, "windows": bank.windows, "orders": bank.orders,
                    "families": bank.families, "config": _jsonable(cfg.to_dict())}, bank_file)
    if cfg.centre == "bright":  # after bank.pt: the stored bank is the simulator's
        bank = recentre_bank(bank)
    yield Progress("bank", len(bank), len(bank), {"seconds": time.perf_counter() - t0})
    if device != "cpu":  # observations are made where the bank lives (data.make_observations)
        bank = KernelBank(bank.spectra.to(device), bank.windows.to(device),
                          bank.orders.to(device), bank.families)

    mcfg = cfg.model
    modules = {"vae": KernelVAE(mcfg).to(device), "encoder": ObservationEncoder(mcfg).to(device),
               "onestep": OneStep(mcfg).to(device)}
    warm = frozenset()
    if cfg.init_from is not None:
        warm = warm_start(modules, cfg.init_from)
    done: list[str] = []
    if state is not None:
        for n, sd in state["modules"].items():
            modules[n].load_state_dict(sd)
        done = list(state["done"])
        gen.set_state(state["rng"])
    timings = {}
    stages = [
        ("stage1", lambda: train_stage1(modules["vae"], bank, cfg, gen, device)),
        ("stage2", lambda: train_stage2(modules["encoder"], modules["vae"], bank, cfg, gen,
                                        device, warm=warm, self_guide=self_guide)),
        ("onestep", lambda: train_onestep(modules["onestep"], bank, cfg, gen, device)),
    ]
    for name in ("stage1", "onestep"):
        if getattr(cfg, f"{name}_steps") == 0 and name not in done:
            done.append(name)  # the warm start's network, kept as it is
    for name, run in stages:
        if name in done:
            continue
        ts = time.perf_counter()
        yield from run()
        timings[name] = time.perf_counter() - ts
        done.append(name)
        _save_state(state_file, modules, done, gen, cfg)
    meta = {"train": cfg.to_dict(), "seconds": timings, "total_seconds":
            time.perf_counter() - t0, "torch": torch.__version__}
    save_set(out, mcfg, {n: m.cpu() for n, m in modules.items()}, meta)
    (out / "train_log.json").write_text(json.dumps(meta, indent=2, default=str))
    return out
