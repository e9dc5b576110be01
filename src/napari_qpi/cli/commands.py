"""The subcommands: each has its options (``add_*``) and what it does (``run_*``).

Every check of the arguments runs before the first long step; see :mod:`.checks`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..extraction.registry import METHODS
from .checks import (
    UsageError,
    advance,
    check_device,
    check_folder,
    check_output,
    check_weights,
    drain_with_bar,
    fraction,
    int_at_least,
    method_list,
    methods_text,
    odd_window,
    positive_float,
    print_warnings,
    quality_line,
)
from .extract import DEFAULT_METHOD, OUTPUT_DOC, add_extract, run_extract


# ---------------------------------------------------------------- simulate / demo
def add_simulate(p: argparse.ArgumentParser) -> None:
    from ..physics.bands import FAMILIES

    p.add_argument("--family", default="free_electron", choices=FAMILIES,
                   help="band family")
    p.add_argument("--size", type=int_at_least(8), default=128, help="map side in pixels")
    p.add_argument("--energies", type=int_at_least(1), default=8, help="number of energies")
    p.add_argument("--scatterers", type=int_at_least(1), default=20,
                   help="number of scatterers")
    p.add_argument("--model", default="linear", choices=("linear", "tmatrix"),
                   help="linear sum of kernels, or multi-impurity T-matrix scattering")
    p.add_argument("--snr", type=positive_float, default=10.0,
                   help="signal-to-noise power ratio per slice")
    p.add_argument("--kernel-size", type=odd_window, default=None,
                   help="odd kernel window in px (default: 65, or the largest odd window "
                        "the map holds)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed")


def _simulate(args):
    from ..physics.bands import default_band
    from ..physics.simulation import default_energies, simulate

    band = default_band(args.family)
    k = args.kernel_size or min(65, args.size - 1 + args.size % 2)
    return simulate(band=band, shape=(args.size, args.size), kernel_size=k,
                    energies=default_energies(band, args.energies),
                    n_scatterers=args.scatterers, model=args.model, snr=args.snr,
                    seed=args.seed)


def add_simulate_out(p: argparse.ArgumentParser) -> None:
    add_simulate(p)
    p.add_argument("--out", type=Path, default=Path("qpi_stack.npz"),
                   metavar="FILE",
                   help="output .npz (truth kernel and positions in its metadata)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def run_simulate(args) -> int:
    from ..io import QPIStack

    out = check_output(args.out, overwrite=args.overwrite, suffix=".npz",
                       example="qpi_stack.npz")
    sim = _simulate(args)
    meta = {**sim.metadata, "positions": sim.positions.tolist(),
            "kernel": sim.kernel.tolist()}
    out = QPIStack(sim.observation, sim.energies, sim.pixel_size, meta).save(out)
    print(f"wrote {out}: {sim.observation.shape[0]} energies × "
          f"{sim.observation.shape[1]}×{sim.observation.shape[2]} px, "
          f"{sim.pixel_size:g} Å/px, {len(sim.positions)} scatterers "
          f"(positions in its metadata: extract --positions {out})")
    return 0


def add_demo(p: argparse.ArgumentParser) -> None:
    add_simulate(p)
    p.add_argument("--figure", type=Path, default=Path("qpi_demo.png"), metavar="FILE",
                   help="PNG to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --figure")
    p.add_argument("--method", default=DEFAULT_METHOD,
                   choices=[n for n, m in METHODS.items() if not m.needs_positions],
                   help="blind extraction method")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_demo(args) -> int:
    from ..evaluation import score
    from ..evaluation.figures import overview_figure
    from ..extraction.extract import iter_extract

    check_output(args.figure, overwrite=args.overwrite, option="--figure",
                 example="qpi_demo.png")
    sim = _simulate(args)
    res = drain_with_bar(iter_extract(sim.observation, method=args.method), quiet=args.quiet)
    print_warnings(res.info)
    s = score(sim.kernel, res.kernel)
    e = sim.observation.shape[0] // 2
    ran = res.method if res.method == args.method else f"{args.method} → {res.method}"
    out = overview_figure(
        args.figure, sim.observation[e],
        {"true kernel": sim.kernel[e], f"{ran} kernel (blind)": res.kernel[e],
         "residual": res.residual[e]},
        pixel_size=sim.pixel_size, energy=sim.energies[e],
        title=f"{args.family}, SNR {args.snr:g}, seed {args.seed}: tail similarity "
              f"{s['tail_similarity']:.2f} (median over {len(sim.energies)} energies)")
    print(f"simulated {sim.observation.shape} ({args.family}, SNR {args.snr:g}), "
          f"extracted blind with {ran} in {res.info.get('seconds', float('nan')):.2f} s")
    print(f"median over energies: tail similarity {s['tail_similarity']:.3f}, kernel "
          f"similarity {s['kernel_similarity']:.3f}; {quality_line(res.info)}")
    print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------- benchmark
def add_benchmark(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int_at_least(1), default=8,
                   help="cases per (families, SNR) cell of the seeded set")
    p.add_argument("--methods", type=method_list, default=",".join(METHODS),
                   help="comma-separated methods")
    p.add_argument("--weights", default=None,
                   help="weight set of learned methods (default: seen for the seeded set, "
                        "so unseen rows are honest; default for --foreign)")
    p.add_argument("--protocol", default="default", choices=("default", "paper"),
                   help="the seeded set, or the seed paper's train/test protocol")
    p.add_argument("--foreign", nargs="?", type=Path, const=True, default=None,
                   metavar="DIR", help="run blind on the foreign validation set in DIR "
                                       "(default ../shared/data/foreign) instead")
    p.add_argument("--instrument", nargs="?", type=Path, const=True, default=None,
                   metavar="DIR", help="run blind on the instrument validation set in DIR "
                                       "(default ../shared/data/instrument) instead: "
                                       "medians per artefact, scatterers found per true one")
    p.add_argument("--mixed", nargs="?", type=Path, const=True, default=None,
                   metavar="FILE", help="run blind on the two-species maps in FILE "
                                        "(default ../shared/data/instrument/mixed.npz) "
                                        "instead, with --n-types; per species: the best "
                                        "kernel's tail similarity, scatterers assigned")
    p.add_argument("--n-types", default="2", metavar="N",
                   help="with --mixed: 2–4 or 'auto' (default 2)")
    p.add_argument("--limit", type=int_at_least(1), default=None,
                   help="with --foreign: at most this many cases of maps and of stacks, "
                        "spread over defect kinds and SNRs")
    p.add_argument("--kernel-size", type=odd_window, default=None,
                   help="with --foreign: the window every method returns (default: "
                        "chosen from the data)")
    p.add_argument("--guided", action="store_true",
                   help="with --foreign: give every method the true scatterer positions "
                        "(an oracle: what finding them costs)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the cases")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="also write the table here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_benchmark(args) -> int:
    from tqdm import tqdm

    from ..evaluation import benchmark

    if args.out is not None:
        check_output(args.out, overwrite=args.overwrite, example="table.md")
    if args.guided and args.foreign is None:
        raise UsageError("--guided needs --foreign (the seeded set has guided rows already)")
    if args.instrument is not None and args.foreign is not None:
        raise UsageError("choose one of --foreign and --instrument")
    if sum(x is not None for x in (args.instrument, args.foreign, args.mixed)) > 1:
        raise UsageError("choose one of --foreign, --instrument and --mixed")
    if args.mixed is not None:
        from ..evaluation.species import load_mixed, mixed_table, run_mixed
        from .extract import n_types_arg

        try:
            n_types = n_types_arg(args.n_types)
            cases = load_mixed(None if args.mixed is True else args.mixed)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise UsageError(f"--mixed: {exc}") from None
        if args.limit is not None:
            cases = cases[:args.limit]
        with tqdm(total=len(cases), disable=args.quiet, desc="mixed set", unit="map",
                  leave=False) as bar:
            records = run_mixed(cases, n_types, on_case=lambda r: bar.update(1))
        text = mixed_table(records)
    elif args.protocol == "paper":
        from ..evaluation.paper_protocol import iter_paper_protocol

        text = drain_with_bar(iter_paper_protocol(seed=args.seed), quiet=args.quiet)
    elif args.instrument is not None:
        from ..evaluation.instrument import instrument_table, iter_instrument

        weights = args.weights or "default"
        check_weights(weights)
        folder = None if args.instrument is True else args.instrument
        if folder is not None and not Path(folder).is_dir():
            raise UsageError(f"--instrument: no folder {folder}")
        try:
            events = iter_instrument(args.methods, folder, limit=args.limit, weights=weights,
                                     kernel_size=args.kernel_size)
            records = drain_with_bar(events, quiet=args.quiet, desc="instrument set")
        except ValueError as exc:  # no set found at the default place
            raise UsageError(f"--instrument: {exc}") from None
        text = instrument_table(records)
    elif args.foreign is not None:
        from ..evaluation.foreign import default_directory, foreign_table, iter_foreign

        weights = args.weights or "default"
        check_weights(weights)
        folder = default_directory() if args.foreign is True else args.foreign
        if folder is None or not Path(folder).is_dir():
            raise UsageError(f"--foreign: no folder {folder or '../shared/data/foreign'}")
        records = drain_with_bar(iter_foreign(args.methods, folder, limit=args.limit,
                                              weights=weights,
                                              kernel_size=args.kernel_size,
                                              guided=args.guided),
                                 quiet=args.quiet, desc="foreign set")
        text = foreign_table(records)
    else:
        weights = args.weights or "seen"
        check_weights(weights)
        cases = benchmark.make_cases(args.n, seed=args.seed)
        todo = len(benchmark.plan(args.methods, cases))
        with tqdm(total=todo, disable=args.quiet, desc="benchmark", unit="run",
                  leave=False) as bar:
            records = list(benchmark.run(args.methods, cases, weights=weights,
                                         progress=lambda r: bar.update(1)))
        text = benchmark.table(records)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0


# ---------------------------------------------------------------- train
def add_train(p: argparse.ArgumentParser) -> None:
    from ..models.train_config import (
        BANK_KERNEL_BYTES,
        BATCH_MAP_BYTES,
        MAX_BANK_SIZE,
        MAX_BATCH_SIZE,
    )

    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the weight set")
    p.add_argument("--split", default="all", choices=("all", "seen"),
                   help="what to learn from (seen: hold out the held-out physics classes "
                        "and unseen families, for honest benchmarks)")
    p.add_argument("--sampler", default="broad", choices=("broad", "families"),
                   help="kernels: the broad physics classes mixed with the legacy "
                        "families (default), or the six legacy families only")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed")
    p.add_argument("--steps", type=int_at_least(1), default=None,
                   help="steps per stage (default: the training config's)")
    for stage in ("stage1", "stage2", "onestep"):
        p.add_argument(f"--{stage}-steps", type=int_at_least(0 if stage != "stage2" else 1),
                       default=None, help=f"steps of {stage} only (overrides --steps)"
                       + ("" if stage == "stage2" else
                          f"; 0 keeps the --init-from set's {stage} network"))
    p.add_argument("--guide-shift", type=int_at_least(0), default=None, metavar="PX",
                   help="largest random offset (px) of the scatterer map given to half "
                        "the guided training maps (default: the config's, 0)")
    p.add_argument("--self-guide", type=fraction, default=None, metavar="FRACTION",
                   help="fraction of each stage-2 batch guided by the scatterers the "
                        "encoder's own blind kernel finds, as auto guides it (default 0)")
    p.add_argument("--centre", default=None, choices=("site", "bright"),
                   help="the pixel each training kernel is centred on: the defect's first "
                        "site, or its brightest point, where a blind fit or a click puts a "
                        "scatterer (default: the config's, site)")
    p.add_argument("--anchored-encoder", action="store_true",
                   help="stage 1's encoder also reads each map's power kernel, so stage 2 "
                        "aligns to the latent that decodes best on it (ModelConfig."
                        "anchored_encoder; from a set without it, the new input starts "
                        "silent)")
    p.add_argument("--init-from", default=None, metavar="SET",
                   help="warm start from a weight set (shipped name or folder): tensors "
                        "of matching name and shape")
    p.add_argument("--bank-size", default=None, type=int_at_least(
        1, MAX_BANK_SIZE, f" (~{BANK_KERNEL_BYTES / 2**20:.2f} MiB of memory per kernel)"),
                   help=f"kernels in the training bank, at most {MAX_BANK_SIZE} "
                        "(default: the config's)")
    p.add_argument("--batch-size", default=None, type=int_at_least(
        1, MAX_BATCH_SIZE, f" (~{BATCH_MAP_BYTES / 2**20:.0f} MiB of memory per map)"),
                   help=f"maps per training step, at most {MAX_BATCH_SIZE} (default: the "
                        "config's)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N, mps")
    p.add_argument("--workers", type=int_at_least(1), default=1,
                   help="processes that simulate the kernel bank (same bank for any count)")
    p.add_argument("--restart", action="store_true", help="ignore a partial run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_train(args) -> int:
    import dataclasses

    from tqdm import tqdm

    from ..extraction.selfguide import self_guide
    from ..models.train import TrainConfig, train
    from ..progress import drain

    check_folder(args.out)
    check_device(args.device)
    if args.init_from is not None:
        check_weights(args.init_from, "--init-from")
    elif 0 in (args.stage1_steps, args.onestep_steps):
        stage = "stage1" if args.stage1_steps == 0 else "onestep"
        raise UsageError(f"--{stage}-steps 0 keeps the network of a warm start: pass "
                         "--init-from SET, or at least 1 step")
    cfg = TrainConfig(split=args.split, seed=args.seed, sampler=args.sampler,
                      init_from=args.init_from)
    for stage in ("stage1", "stage2", "onestep"):
        steps = getattr(args, f"{stage}_steps")
        steps = args.steps if steps is None else steps  # (0 is a choice, not a default)
        if steps is not None:
            cfg = dataclasses.replace(cfg, **{f"{stage}_steps": steps})
    if args.bank_size is not None:
        cfg = dataclasses.replace(cfg, bank_size=args.bank_size)
    if args.batch_size is not None:
        cfg = dataclasses.replace(cfg, batch_size=args.batch_size)
    if args.guide_shift is not None:
        cfg = dataclasses.replace(cfg, guide_shift=args.guide_shift)
    if args.centre is not None:
        cfg = dataclasses.replace(cfg, centre=args.centre)
    if args.self_guide is not None:
        cfg = dataclasses.replace(cfg, self_guide=args.self_guide)
    if args.anchored_encoder:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model,
                                                                 anchored_encoder=True))
    bars: dict[str, tqdm] = {}

    def show(ev) -> None:  # one bar per stage
        stage = getattr(ev, "stage", None) or ev.message
        if stage not in bars:
            for old in bars.values():
                old.close()
            bars[stage] = tqdm(total=ev.total, desc=stage, disable=args.quiet, leave=False)
        bar = bars[stage]
        losses = getattr(ev, "losses", None) or ev.info
        if "loss" in losses and ev.step % 50 == 0:
            bar.set_postfix(loss=f"{losses['loss']:.3f}", refresh=False)
        advance(bar, ev)

    try:
        out = drain(train(cfg, args.out, device=args.device, resume=not args.restart,
                               workers=args.workers, self_guide=self_guide), show)
    finally:
        for bar in bars.values():
            bar.close()
    print(f"wrote weights to {out}")
    return 0


#: name → (add options, run, one-line help, epilog)
COMMANDS = {
    "simulate": (add_simulate_out, run_simulate,
                 "simulate a QPI stack with its true kernel and write it as .npz", None),
    "demo": (add_demo, run_demo,
             "simulate, extract blind and score, headless; writes a figure",
             "tail similarity: kernel similarity of the oscillating tails (the core "
             "disc zeroed), 1 = perfect; see docs/benchmarks.md."),
    "extract": (add_extract, run_extract, "extract the kernel from a stack file",
                OUTPUT_DOC + "\n" + methods_text()),
    "benchmark": (add_benchmark, run_benchmark,
                  "every method on the same seeded cases (or the foreign set), "
                  "one markdown table", methods_text()),
    "train": (add_train, run_train,
              "train the two-stage model and the one-step baseline", None),
}
