"""``napari-qpi`` command line: simulate, demo (and later extract, train, benchmark)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _simulate_args(p: argparse.ArgumentParser) -> None:
    from .physics.bands import FAMILIES

    p.add_argument("--family", default="free_electron", choices=FAMILIES)
    p.add_argument("--size", type=int, default=128, help="map side in pixels")
    p.add_argument("--energies", type=int, default=8, help="number of energies")
    p.add_argument("--scatterers", type=int, default=20)
    p.add_argument("--model", default="linear", choices=("linear", "tmatrix"))
    p.add_argument("--snr", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)


def _simulate(args):
    from .physics.bands import default_band
    from .physics.simulation import default_energies, simulate

    band = default_band(args.family)
    return simulate(band=band, shape=(args.size, args.size),
                    energies=default_energies(band, args.energies),
                    n_scatterers=args.scatterers, model=args.model, snr=args.snr,
                    seed=args.seed)


def cmd_simulate(args) -> int:
    from .io import QPIStack

    sim = _simulate(args)
    meta = {**sim.metadata, "positions": sim.positions.tolist(),
            "kernel": sim.kernel.tolist()}
    out = QPIStack(sim.observation, sim.energies, sim.pixel_size, meta).save(args.out)
    print(f"wrote {out}: {sim.observation.shape[0]} energies × "
          f"{sim.observation.shape[1]}×{sim.observation.shape[2]} px, "
          f"{sim.pixel_size:g} Å/px, {len(sim.positions)} scatterers")
    return 0


def cmd_demo(args) -> int:
    from .figures import overview_figure

    sim = _simulate(args)
    e = sim.observation.shape[0] // 2
    out = overview_figure(args.figure, sim.observation[e], {"true kernel": sim.kernel[e]},
                          energy=sim.energies[e], title=f"{args.family}, seed {args.seed}")
    print(f"simulated {sim.observation.shape} ({args.family}, SNR {args.snr:g}); wrote {out}")
    return 0


def cmd_train(args) -> int:
    import dataclasses

    from tqdm import tqdm

    from .models.train import TrainConfig, train

    cfg = TrainConfig(split=args.split, seed=args.seed)
    if args.steps is not None:
        cfg = dataclasses.replace(cfg, stage1_steps=args.steps, stage2_steps=args.steps,
                                  onestep_steps=args.steps)
    if args.bank_size is not None:
        cfg = dataclasses.replace(cfg, bank_size=args.bank_size)
    bar = None
    gen = train(cfg, args.out, device=args.device, resume=not args.restart)
    try:
        while True:
            ev = next(gen)
            if bar is None or bar.desc != ev.stage:
                if bar is not None:
                    bar.close()
                bar = tqdm(total=ev.total, desc=ev.stage, initial=ev.step - 1,
                           disable=args.quiet)
            bar.update(1)
            if ev.step % 50 == 0:
                bar.set_postfix(loss=f"{ev.losses.get('loss', 0):.3f}")
    except StopIteration as stop:
        if bar is not None:
            bar.close()
        print(f"wrote weights to {stop.value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``napari-qpi`` command."""
    parser = argparse.ArgumentParser(prog="napari-qpi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("simulate", help="simulate a QPI stack and write it as .npz")
    _simulate_args(p)
    p.add_argument("--out", type=Path, default=Path("qpi_stack.npz"))
    p.set_defaults(func=cmd_simulate)
    p = sub.add_parser("demo", help="simulate, extract and score, headless; writes a figure")
    _simulate_args(p)
    p.add_argument("--figure", type=Path, default=Path("qpi_demo.png"))
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("train", help="train the two-stage model and the one-step baseline")
    p.add_argument("--out", type=Path, required=True, help="folder for the weight set")
    p.add_argument("--split", default="all", choices=("all", "seen"),
                   help="families to learn from (seen: hold out the unseen families)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="steps per stage (default config)")
    p.add_argument("--bank-size", type=int, default=None)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    p.add_argument("--restart", action="store_true", help="ignore a partial run in --out")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"napari-qpi {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
