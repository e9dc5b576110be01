"""``napari-qpi`` command line: simulate, demo, extract, train, benchmark."""

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


def _drain(gen, desc: str, quiet: bool = False):
    """Run an extraction generator with a tqdm bar; return its value."""
    from tqdm import tqdm

    from .progress import drain

    bar = tqdm(desc=desc, disable=quiet, leave=False)

    def show(ev) -> None:
        bar.total, bar.n = ev.total, ev.step
        bar.set_description(ev.message)
        bar.refresh()

    value = drain(gen, show)
    bar.close()
    return value


def cmd_demo(args) -> int:
    import numpy as np

    from .evaluation import metrics
    from .evaluation.figures import overview_figure
    from .extraction.extract import iter_extract

    sim = _simulate(args)
    res = _drain(iter_extract(sim.observation, method=args.method), args.method, args.quiet)
    e = sim.observation.shape[0] // 2
    tails = metrics.tail_similarity(sim.kernel, res.kernel)
    kern = metrics.kernel_similarity(sim.kernel, res.kernel)
    out = overview_figure(
        args.figure, sim.observation[e],
        {"true kernel": sim.kernel[e], f"{args.method} kernel (blind)": res.kernel[e],
         "residual": res.residual[e]},
        energy=sim.energies[e],
        title=f"{args.family}, SNR {args.snr:g}, seed {args.seed}: tail similarity "
              f"{np.median(tails):.2f}")
    print(f"simulated {sim.observation.shape} ({args.family}, SNR {args.snr:g}), "
          f"extracted blind with {args.method} in {res.info['seconds']:.2f} s")
    print(f"median over energies: tail similarity {np.median(tails):.3f}, kernel similarity "
          f"{np.median(kern):.3f}, relative residual {res.info['relative_residual']:.3f}")
    print(f"wrote {out}")
    return 0


def cmd_extract(args) -> int:
    import numpy as np

    from .extraction import iter_extract
    from .io import QPIStack, load_stack

    stack = load_stack(args.input, channel=args.channel)
    positions = None if args.positions is None else np.loadtxt(args.positions, ndmin=2)
    res = _drain(iter_extract(stack, method=args.method, positions=positions,
                              kernel_size=args.kernel_size, device=args.device),
                 args.method, args.quiet)
    meta = {"source": str(args.input), "method": args.method, **res.info}
    out = QPIStack(res.kernel, stack.energies, stack.pixel_size, meta).save(args.out)
    np.savez_compressed(Path(out).with_name(Path(out).stem + "_maps.npz"),
                        activation=res.activation, residual=res.residual)
    print(f"kernel {res.kernel.shape} → {out}; relative residual "
          f"{res.info['relative_residual']:.3f} ({res.info['seconds']:.2f} s)")
    return 0


def cmd_benchmark(args) -> int:
    from tqdm import tqdm

    from .evaluation import benchmark

    if args.protocol == "paper":
        from .evaluation.paper_protocol import run_paper_protocol

        print(run_paper_protocol(seed=args.seed, quiet=args.quiet))
        return 0
    cases = benchmark.make_cases(args.n, seed=args.seed)
    methods = args.methods.split(",")
    bar = tqdm(total=None, disable=args.quiet, desc="benchmark")
    records = list(benchmark.run(methods, cases, weights=args.weights,
                                 progress=lambda r: bar.update(1)))
    bar.close()
    text = benchmark.table(records)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
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
    from .progress import drain

    bars: dict[str, tqdm] = {}

    def show(ev) -> None:  # one bar per stage
        if ev.stage not in bars:
            for old in bars.values():
                old.close()
            bars[ev.stage] = tqdm(total=ev.total, desc=ev.stage, initial=ev.step - 1,
                                  disable=args.quiet)
        bar = bars[ev.stage]
        bar.update(1)
        if ev.step % 50 == 0:
            bar.set_postfix(loss=f"{ev.losses.get('loss', 0):.3f}")

    out = drain(train(cfg, args.out, device=args.device, resume=not args.restart), show)
    for bar in bars.values():
        bar.close()
    print(f"wrote weights to {out}")
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
    p.add_argument("--method", default="two-stage")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("extract", help="extract the kernel from a stack file")
    p.add_argument("input", type=Path, help=".npz/.npy/.tif/.3ds/.sxm stack")
    p.add_argument("--out", type=Path, default=Path("kernel.npz"))
    p.add_argument("--method", default="two-stage")
    p.add_argument("--positions", type=Path, default=None,
                   help="text file of (row, col) scatterer pixels: guided mode")
    p.add_argument("--channel", default=None)
    p.add_argument("--kernel-size", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_extract)
    p = sub.add_parser("benchmark", help="all methods on the same seeded cases")
    p.add_argument("--n", type=int, default=8, help="cases per (families, SNR) cell")
    p.add_argument("--methods", default="two-stage,one-step,wiener,power,refine,sbd")
    p.add_argument("--weights", default="seen")
    p.add_argument("--protocol", default="default", choices=("default", "paper"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_benchmark)
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
