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
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"napari-qpi {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
